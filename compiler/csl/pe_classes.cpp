// for_each_pe_class (csl_checker.h): coordinate compression over every PeSet's boundaries, so
// that checks and statistics over a 750 x 994 rectangle visit tens of classes, not 745,500 PEs.
#include <algorithm>
#include <set>

#include "compiler/csl/csl_checker.h"

namespace pyflame_rt::csl {

void for_each_pe_class(const CslProgram& prog, const std::function<void(int x, int y, int64_t count)>& fn) {
  std::set<int> xs = {0, prog.width}, ys = {0, prog.height};
  auto add = [&](const PeSet& s) {
    xs.insert(std::clamp(s.x0, 0, prog.width));
    xs.insert(std::clamp(s.x0 + s.w, 0, prog.width));
    ys.insert(std::clamp(s.y0, 0, prog.height));
    ys.insert(std::clamp(s.y0 + s.h, 0, prog.height));
  };
  for (const CslArray& a : prog.arrays) add(a.pes);
  for (const RouteRule& r : prog.routes) add(r.pes);
  for (const OpCode& op : prog.ops) {
    add(op.region);
    for (const ColorUse& u : op.uses) add(u.pes);
    for (const auto& role : op.roles) add(role.second);
  }
  std::vector<int> xv(xs.begin(), xs.end()), yv(ys.begin(), ys.end());
  for (size_t j = 0; j + 1 < yv.size(); ++j) {
    const int64_t rows = yv[j + 1] - yv[j];
    for (size_t i = 0; i + 1 < xv.size(); ++i) {
      const int a = xv[i], n = xv[i + 1] - xv[i];
      // Sets alternate by column at most every 2nd column: two parity classes per cell.
      fn(a, yv[j], rows * ((n + 1) / 2));
      if (n >= 2) fn(a + 1, yv[j], rows * (n / 2));
    }
  }
}

}  // namespace pyflame_rt::csl
