// The printers of one partition's files from its finished CslProgram (lowered, tasks and
// queues assigned). Pure functions of the program: the same program prints the same bytes.
//   layout.csl       write_layout        rectangle, per-PE code and params, routes, exports
//   pe_program.csl   write_pe_program    arrays, DSDs, op functions, tasks, comptime block
//   run.py           write_host_script   SdkRuntime driver: weights once, then per op
//                                        inputs in, launch, outputs out
//   compile.sh       write_compile_script  the cslc command line
#pragma once

#include <string>

#include "compiler/csl/csl_program.h"
#include "graph/status.h"

namespace pyflame_rt::csl {

std::string write_layout(const CslProgram& prog);
std::string write_pe_program(const CslProgram& prog);
std::string write_host_script(const CslProgram& prog);
std::string write_compile_script(const CslProgram& prog);

// Gives every shared task a local task id and every colour its queues (tasks.cpp). Errors
// name the partition and the numbers when the ids or queues run out.
struct CslBudget;
Status assign_tasks(CslProgram& prog, const CslBudget& budget);

}  // namespace pyflame_rt::csl
