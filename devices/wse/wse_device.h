// The wafer device ("wse3", "wse2"; provider CerebrasExecutionProvider): claims the float32
// nodes it lowers (lowering.h), places them on the fabric (placement.h) and runs the placed
// program on the mesh simulator (mesh_simulator.h). No Cerebras hardware or SDK is reachable
// from this build: the device is a faithful model whose outputs equal the CPU device's and
// whose report (report_json) gives the placement and the cost model's cycle estimates.
//
//   DeviceConfig cfg;  cfg.options = {{"fabric", "64x64"}};
//   ASSIGN_OR_RETURN(auto dev, DeviceRegistry::global().create("wse3", cfg));
//   ASSIGN_OR_RETURN(auto exe, dev->compile(graph));
//   std::string report = exe->report_json();
#pragma once

#include <memory>

#include "devices/device_registry.h"
#include "devices/wse/mesh_plan.h"
#include "devices/wse/wse_spec.h"

namespace pyflame_rt {

// The name of the wafer's own pass (compiler/passes/mesh_layout.h).
inline constexpr const char* kMeshLayoutPassName = "wse_mesh_layout";

Expected<std::unique_ptr<Device>> make_wse_device(const WseSpec& base, const DeviceConfig& config);

// The plan as the report's JSON object (what report_json() returns for a placed program).
std::string mesh_plan_json(const MeshPlan& plan, const WseSpec& spec);

}  // namespace pyflame_rt
