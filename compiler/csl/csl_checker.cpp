// check_program: structural checks of a generated partition (csl_checker.h).
#include "compiler/csl/csl_checker.h"

#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

namespace pyflame_rt::csl {

namespace {

// Every capture group 1 of `re` in `text`.
std::set<std::string> captures(const std::string& text, const std::string& re) {
  std::set<std::string> out;
  const std::regex r(re);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), r); it != std::sregex_iterator(); ++it) {
    out.insert((*it)[1].str());
  }
  return out;
}

bool has(const std::vector<Dir>& ds, Dir d) { return std::find(ds.begin(), ds.end(), d) != ds.end(); }

std::string file(const std::map<std::string, std::string>& files, const char* name) {
  auto it = files.find(name);
  return it == files.end() ? "" : it->second;
}

void check_routes(const CslProgram& prog, const CslBudget& budget, CslCheck& out) {
  const std::string where = "partition " + prog.partition + ": ";
  std::set<int> ids(prog.colors.begin(), prog.colors.end());
  for (const OpCode& op : prog.ops) {
    for (const ColorUse& u : op.uses) ids.insert(u.color);
  }
  for (const RouteRule& r : prog.routes) ids.insert(r.color);
  out.colors = static_cast<int>(ids.size());
  if (out.colors > budget.program_colors()) {
    out.errors.push_back(where + std::to_string(out.colors) + " colours used, the budget is " +
                         std::to_string(budget.program_colors()) + " (" + std::to_string(budget.routable_colors) +
                         " routable - " + std::to_string(budget.memcpy_colors) + " for memcpy)");
  }
  for (int c : ids) {
    if (c < 0 || c >= budget.program_colors()) {
      out.errors.push_back(where + "colour " + std::to_string(c) + " is outside the program's ids 0.." +
                           std::to_string(budget.program_colors() - 1));
    }
  }
  std::set<std::string> reported;
  for_each_pe_class(prog, [&](int x, int y, int64_t) {
    std::map<int, const RouteRule*> at;
    for (const RouteRule& r : prog.routes) {
      if (!r.pes.contains(x, y)) continue;
      if (at.count(r.color)) {
        std::string e = where + "PE (" + std::to_string(x) + ", " + std::to_string(y) + ") has two routes for colour " +
                        std::to_string(r.color) + " (" + at[r.color]->pes.to_string() + " and " + r.pes.to_string() + ")";
        if (reported.insert(e).second) out.errors.push_back(e);
      }
      at[r.color] = &r;
    }
    for (const OpCode& op : prog.ops) {
      for (const ColorUse& u : op.uses) {
        if (!u.pes.contains(x, y) || prog.library_routed.count(u.color)) continue;
        auto it = at.find(u.color);
        const char* need = u.receive ? "tx RAMP" : "rx RAMP";
        bool ok = it != at.end() && has(u.receive ? it->second->tx : it->second->rx, Dir::kRamp);
        if (!ok) {
          std::string e = where + op.launch + " " + (u.receive ? "receives" : "sends") + " on colour " +
                          std::to_string(u.color) + " at PE (" + std::to_string(x) + ", " + std::to_string(y) +
                          ") where it is " + (it == at.end() ? "not routed" : "routed without " + std::string(need));
          if (reported.insert(e).second) out.errors.push_back(e);
        }
      }
    }
  });
}

// Ops calling the SDK's <collectives_2d> (mpi_x along rows, mpi_y down columns): the library is
// set up (its colours routed by it, its params passed) and initialised by the op, and the op
// spans the whole rectangle, because every PE of a row or column takes part in each call.
void check_collectives(const CslProgram& prog, CslCheck& out) {
  const bool imported = std::find(prog.imports.begin(), prog.imports.end(), "collectives") != prog.imports.end();
  for (const OpCode& op : prog.ops) {
    if (op.functions.find("mpi_x.") == std::string::npos && op.functions.find("mpi_y.") == std::string::npos) continue;
    const std::string where = "partition " + prog.partition + ": " + op.launch + " (" + op.op_type + " '" + op.node + "') ";
    if (!imported || prog.library_routed.size() < 4 || prog.layout_params.empty()) {
      out.errors.push_back(where + "calls <collectives_2d>, which the partition does not set up");
    }
    // The library must be initialised (mpi_x.init(), mpi_y.init()) before an op's first call.
    if (op.functions.find("summa_init();") == std::string::npos) {
      out.errors.push_back(where + "calls <collectives_2d> without initialising it (summa_init)");
    }
    const PeSet& r = op.region;
    if (r.x0 != 0 || r.y0 != 0 || r.w != prog.width || r.h != prog.height || r.x_mod != 1 || r.bx > 0 || r.by > 0) {
      out.errors.push_back(where + "calls <collectives_2d> on PEs " + r.to_string() + ", not the whole " +
                           std::to_string(prog.width) + "x" + std::to_string(prog.height) + " rectangle");
    }
  }
}

void check_memory(const CslProgram& prog, const CslBudget& budget, CslCheck& out) {
  int64_t total = 0, max_bytes = 0, max_x = 0, max_y = 0;
  double sum = 0;
  for_each_pe_class(prog, [&](int x, int y, int64_t count) {
    const int64_t bytes = prog.array_bytes_at(x, y) + budget.code_reserve_bytes;
    if (bytes > max_bytes) {
      max_bytes = bytes;
      max_x = x;
      max_y = y;
    }
    sum += static_cast<double>(bytes) * count;
    total += count;
  });
  out.sram_bytes_max = max_bytes;
  out.sram_bytes_mean = total ? sum / total : 0;
  if (max_bytes > budget.sram_bytes) {
    std::ostringstream os;
    os << "partition " << prog.partition << ": PE (" << max_x << ", " << max_y << ") needs " << max_bytes
       << " bytes of SRAM (" << max_bytes - budget.code_reserve_bytes << " of arrays + " << budget.code_reserve_bytes
       << " reserved for code), more than its " << budget.sram_bytes << ":";
    for (const CslArray& a : prog.arrays) {
      if (a.pes.contains(static_cast<int>(max_x), static_cast<int>(max_y))) os << " " << a.name << " " << 4 * a.elems;
    }
    out.errors.push_back(os.str());
  }
}

void check_text(const CslProgram& prog, const std::map<std::string, std::string>& files, CslCheck& out) {
  const std::string where = "partition " + prog.partition + ": ";
  const std::string layout = file(files, "layout.csl"), pe = file(files, "pe_program.csl"), py = file(files, "run.py");
  if (layout.empty() || pe.empty() || py.empty() || file(files, "compile.sh").empty()) {
    out.errors.push_back(where + "a file is missing (layout.csl, pe_program.csl, run.py, compile.sh)");
    return;
  }
  // Exports: layout's names against pe_program's symbols.
  const std::set<std::string> names = captures(layout, R"re(@export_name\("([A-Za-z_0-9]+)\")re");
  std::set<std::string> symbols = captures(pe, R"re(@export_symbol\([A-Za-z_0-9]+, "([A-Za-z_0-9]+)"\))re");
  for (const auto& f : captures(pe, R"(@export_symbol\(([A-Za-z_0-9]+)\))")) symbols.insert(f);
  for (const auto& n : names) {
    if (!symbols.count(n)) out.errors.push_back(where + "layout.csl exports '" + n + "' but pe_program.csl has no such symbol");
  }
  for (const auto& s : symbols) {
    if (!names.count(s)) out.errors.push_back(where + "pe_program.csl exports '" + s + "' but layout.csl does not name it");
  }
  for (const auto& f : captures(pe, R"re(@export_symbol\(([A-Za-z_0-9]+)\))re")) {
    if (!std::regex_search(pe, std::regex("fn " + f + R"re(\(\) void \{)re"))) {
      out.errors.push_back(where + "exported function '" + f + "' is not defined");
    }
  }
  // Tasks: every task bound; every id used declared and bound.
  const std::set<std::string> task_fns = captures(pe, R"re(\btask ([A-Za-z_0-9]+)\()re");
  std::set<std::string> bound_fns = captures(pe, R"re(@bind_(?:data|local)_task\(([A-Za-z_0-9]+),)re");
  const std::set<std::string> bound_ids = captures(pe, R"re(@bind_(?:data|local)_task\([A-Za-z_0-9]+, ([A-Za-z_0-9]+)\))re");
  for (const auto& t : task_fns) {
    if (!bound_fns.count(t)) out.errors.push_back(where + "task '" + t + "' is never bound to a task id");
  }
  for (const auto& b : bound_fns) {
    if (!task_fns.count(b)) out.errors.push_back(where + "a task id is bound to '" + b + "', which is not a task");
  }
  std::set<std::string> used_ids = captures(pe, R"re(@(?:activate|block|unblock)\(([A-Za-z_0-9]+)\))re");
  for (const auto& id : captures(pe, R"(\.activate = ([A-Za-z_0-9]+))")) used_ids.insert(id);
  // <collectives_2d> calls activate their callback task when they complete.
  for (const auto& id : captures(pe, R"((?:broadcast|scatter|gather|reduce_fadds)\([^;]*, ([A-Za-z_0-9]+)\);)")) {
    used_ids.insert(id);
  }
  for (const auto& id : used_ids) {
    if (!bound_ids.count(id)) out.errors.push_back(where + "task id '" + id + "' is activated but no task is bound to it");
  }
  // Colours: each colour param of the PE program is routed somewhere in layout.csl.
  const std::set<std::string> routed = captures(layout, R"re(@set_color_config\(x, y, (c[0-9]+),)re");
  for (const auto& c : captures(pe, R"re(param (c[0-9]+): color;)re")) {
    if (!routed.count(c)) out.errors.push_back(where + "colour " + c.substr(1) + " is used by pe_program.csl but never routed");
  }
  // Every launched function ends by unblocking the memcpy command stream on every path we
  // generate: its prologue (PEs outside the op) and its completion.
  for (const OpCode& op : prog.ops) {
    if (op.launch.empty()) continue;  // host-side movement
    size_t n = 0;
    for (size_t p = op.functions.find("sys_mod.unblock_cmd_stream()"); p != std::string::npos;
         p = op.functions.find("sys_mod.unblock_cmd_stream()", p + 1)) {
      ++n;
    }
    if (n < 2) out.errors.push_back(where + op.launch + " does not unblock the command stream when it completes");
  }
  // run.py: symbols and launches exist.
  for (const auto& s : captures(py, R"re(sym\['([A-Za-z_0-9]+)'\])re")) {
    if (!names.count(s)) out.errors.push_back(where + "run.py copies '" + s + "', which layout.csl does not export");
  }
  for (const auto& f : captures(py, R"re(runner\.launch\('([A-Za-z_0-9]+)')re")) {
    if (!names.count(f)) out.errors.push_back(where + "run.py launches '" + f + "', which layout.csl does not export");
  }
}

}  // namespace

CslCheck check_program(const CslProgram& prog, const CslBudget& budget, const std::map<std::string, std::string>& files) {
  CslCheck out;
  check_routes(prog, budget, out);
  check_collectives(prog, out);
  check_memory(prog, budget, out);
  check_text(prog, files, out);
  return out;
}

}  // namespace pyflame_rt::csl
