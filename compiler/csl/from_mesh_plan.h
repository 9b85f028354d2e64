// The wafer device's placed program (devices/wse/mesh_plan.h) as the CSL generator's input,
// and the whole plan's CSL written to a directory: one folder per partition ("p0", "p1", ...).
// Only mesh_plan.h / wse_spec.h data is read (no link dependency on the device library).
//
//   ASSIGN_OR_RETURN(MeshPlan plan, plan_mesh(graph, spec));
//   PlanCsl csl = write_plan_csl(plan, spec, &graph, cfg.artifacts_dir);
//   for (const auto& [id, st] : csl.failed) log(st.message());
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/csl/csl_generator.h"
#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"
#include "graph/graph.h"

namespace pyflame_rt::csl {

// The generation's limits from the device's spec (colours, SRAM, code reserve).
CslBudget csl_budget(const WseSpec& spec);

// One partition as generator input. `graph` (optional) supplies constant operands the plan
// does not carry (Clip's bounds). Errors name the op that has no lowering.
Expected<CslPartitionSpec> csl_spec_from_partition(const MeshPlan& plan, const MeshPartition& part, const WseSpec& spec,
                                                   const Graph* graph);

struct PlanCsl {
  std::vector<CslPartitionOutput> written;  // generated and (when a directory was given) written
  std::map<int, Status> failed;             // partition id -> why its CSL could not be generated
};

// Generates every partition; those that cannot be generated are reported, not fatal (the
// simulator does not need the CSL). dir "" generates without writing.
PlanCsl write_plan_csl(const MeshPlan& plan, const WseSpec& spec, const Graph* graph, const std::string& dir);

}  // namespace pyflame_rt::csl
