// PeSet printing and per-PE memory of a CslProgram.
#include "compiler/csl/csl_program.h"

#include <sstream>

namespace pyflame_rt::csl {

std::string PeSet::predicate(int width, int height) const {
  std::vector<std::string> terms;
  auto bound = [&](const char* v, int lo, int n, int full) {
    if (n == 1) {
      terms.push_back(std::string(v) + " == " + std::to_string(lo));
      return;
    }
    if (lo > 0) terms.push_back(std::string(v) + " >= " + std::to_string(lo));
    if (lo + n < full) terms.push_back(std::string(v) + " < " + std::to_string(lo + n));
  };
  bound("x", x0, w, width);
  bound("y", y0, h, height);
  if (x_mod > 1) {
    std::string dx = x0 == 0 ? "x" : "(x - " + std::to_string(x0) + ")";
    terms.push_back(dx + " % " + std::to_string(x_mod) + " == " + std::to_string(x_rem));
  }
  if (terms.empty()) return "true";
  std::string out;
  for (size_t i = 0; i < terms.size(); ++i) out += (i ? " and " : "") + terms[i];
  return out;
}

std::string PeSet::to_string() const {
  std::ostringstream os;
  os << "[" << x0 << "," << y0 << "," << w << "," << h << "]";
  if (x_mod > 1) os << " x%" << x_mod << "==" << x_rem;
  return os.str();
}

const char* dir_name(Dir d) {
  switch (d) {
    case Dir::kRamp: return "RAMP";
    case Dir::kNorth: return "NORTH";
    case Dir::kSouth: return "SOUTH";
    case Dir::kEast: return "EAST";
    case Dir::kWest: return "WEST";
  }
  return "?";
}

int64_t CslProgram::array_bytes_at(int x, int y) const {
  int64_t bytes = 0;
  for (const CslArray& a : arrays) bytes += 4 * (a.pes.contains(x, y) ? a.elems : 1);
  return bytes;
}

}  // namespace pyflame_rt::csl
