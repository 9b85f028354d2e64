// The CSL generator: every partition of a placed plan becomes a folder of SDK sources
// (layout.csl, pe_program.csl, run.py, compile.sh) under the artifacts directory, checked
// structurally (csl_checker.h) before anything is written. Output is a pure function of the
// plan: the same plan gives byte-identical files.
//
//   CslBudget budget;                                  // wse_spec.h values for the generation
//   ASSIGN_OR_RETURN(CslPartitionOutput out, generate_partition(spec, budget));
//   RETURN_IF_ERROR(write_partition(out, "/tmp/artifacts"));   // /tmp/artifacts/p0/...
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/csl/csl_checker.h"
#include "compiler/csl/csl_op.h"
#include "compiler/csl/csl_program.h"
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

struct CslPartitionOutput {
  std::string name;                            // folder name: the partition's name
  CslProgram program;
  std::map<std::string, std::string> files;    // file name -> content
  CslCheck check;
};

// Lowers every op, assigns tasks and queues, decides which results go back to the host.
Expected<CslProgram> build_program(const CslPartitionSpec& spec, const CslBudget& budget);
// Prints the four files.
std::map<std::string, std::string> render_program(const CslProgram& prog);
// build + render + check; a failed check is kFail listing every problem.
Expected<CslPartitionOutput> generate_partition(const CslPartitionSpec& spec, const CslBudget& budget);
// Writes dir/<name>/<file> for every file (scripts executable). Errors name the path.
Status write_partition(const CslPartitionOutput& out, const std::string& dir);
// Every partition, into dir; returns the outputs (in the order of `parts`).
Expected<std::vector<CslPartitionOutput>> generate_csl(const std::vector<CslPartitionSpec>& parts,
                                                       const CslBudget& budget, const std::string& dir);

}  // namespace pyflame_rt::csl
