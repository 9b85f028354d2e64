// Structural checks of a generated partition, on the program (CslProgram) and on the printed
// files, so that a printer bug is caught as well as a lowering bug:
//   - every colour a PE sends or receives on is routed at that PE (RAMP on the right side),
//     no PE has two routes for one colour, the colours fit the routable budget;
//   - every @export_name has its @export_symbol and back, every task is bound, every task id
//     activated/blocked is declared and bound, every colour param is routed in layout.csl,
//     every symbol and function run.py uses is exported;
//   - every op calling <collectives_2d> (mpi_x/mpi_y) has the library set up, initialises it
//     and spans the whole rectangle, and every collective's callback task is bound;
//   - every PE's arrays plus the code reserve fit its SRAM.
//
//   CslCheck check = check_program(prog, budget, files);
//   if (!check.errors.empty()) ... check.sram_bytes_max ...
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compiler/csl/csl_program.h"
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

struct CslCheck {
  std::vector<std::string> errors;  // each names the partition, the thing and the numbers
  int64_t sram_bytes_max = 0;       // arrays + code reserve of the fullest PE
  double sram_bytes_mean = 0;       // over the rectangle's PEs
  int colors = 0;                   // colour ids the program uses (library ones included)
};

// files: name -> content (layout.csl, pe_program.csl, run.py, compile.sh).
CslCheck check_program(const CslProgram& prog, const CslBudget& budget, const std::map<std::string, std::string>& files);

// Calls fn(x, y, count) once per class of PEs that every PeSet of the program treats alike
// (cells between all set boundaries, split by column parity): `count` PEs behave as (x, y).
// (pe_classes.cpp)
void for_each_pe_class(const CslProgram& prog, const std::function<void(int x, int y, int64_t count)>& fn);

}  // namespace pyflame_rt::csl
