// for_each_pe_class (csl_checker.h). Every PeSet is a product of a column test and a row test,
// so columns with the same answers to every set's column test behave alike, and rows likewise:
// the classes are (column class x row class), a few dozen even on a 750 x 994 rectangle.
#include <map>
#include <vector>

#include "compiler/csl/csl_checker.h"

namespace pyflame_rt::csl {

void for_each_pe_class(const CslProgram& prog, const std::function<void(int x, int y, int64_t count)>& fn) {
  std::vector<const PeSet*> sets;
  for (const CslArray& a : prog.arrays) sets.push_back(&a.pes);
  for (const RouteRule& r : prog.routes) sets.push_back(&r.pes);
  for (const OpCode& op : prog.ops) {
    sets.push_back(&op.region);
    for (const ColorUse& u : op.uses) sets.push_back(&u.pes);
    for (const auto& role : op.roles) sets.push_back(&role.second);
  }
  // signature -> (first coordinate, count), in order of first appearance.
  auto classes = [&](int n, bool columns) {
    std::map<std::vector<bool>, std::pair<int, int64_t>> by_sig;
    std::vector<std::vector<bool>> order;
    for (int v = 0; v < n; ++v) {
      std::vector<bool> sig(sets.size());
      for (size_t i = 0; i < sets.size(); ++i) sig[i] = columns ? sets[i]->contains_x(v) : sets[i]->contains_y(v);
      auto it = by_sig.find(sig);
      if (it == by_sig.end()) {
        by_sig[sig] = {v, 1};
        order.push_back(sig);
      } else {
        ++it->second.second;
      }
    }
    std::vector<std::pair<int, int64_t>> out;
    for (const auto& sig : order) out.push_back(by_sig[sig]);
    return out;
  };
  const auto cols = classes(prog.width, true), rows = classes(prog.height, false);
  for (const auto& [y, ny] : rows) {
    for (const auto& [x, nx] : cols) fn(x, y, nx * ny);
  }
}

}  // namespace pyflame_rt::csl
