// PeSet printing and per-PE memory of a CslProgram.
#include "compiler/csl/csl_program.h"

#include <sstream>
#include <vector>

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
  auto rel = [](const char* v, int origin) {
    return origin == 0 ? std::string(v) : "(" + std::string(v) + " - " + std::to_string(origin) + ")";
  };
  auto block = [&](const char* v, int origin, int b, int lo, int n) {
    if (b <= 0) return rel(v, origin);
    if (b == 1) return std::string("0");  // blocks of one: every column is column 0 of its block
    const std::string r = rel(v, origin) + " % " + std::to_string(b);
    if (n == 1) terms.push_back(r + " == " + std::to_string(lo));
    else {
      if (lo > 0) terms.push_back(r + " >= " + std::to_string(lo));
      if (lo + n < b) terms.push_back(r + " < " + std::to_string(lo + n));
    }
    return "(" + r + ")";
  };
  const std::string xr = block("x", x0, bx, bx_lo, bx_n);
  block("y", y0, by, by_lo, by_n);
  if (x_mod > 1 && xr == "0") {
    if (x_rem != 0) terms.push_back("false");
  } else if (x_mod > 1) {
    terms.push_back(xr + " % " + std::to_string(x_mod) + " == " + std::to_string(x_rem));
  }
  if (terms.empty()) return "true";
  std::string out;
  for (size_t i = 0; i < terms.size(); ++i) out += (i ? " and " : "") + terms[i];
  return out;
}

std::string PeSet::to_string() const {
  std::ostringstream os;
  os << "[" << x0 << "," << y0 << "," << w << "," << h << "]";
  if (bx > 0) os << " cols " << bx_lo << ".." << bx_lo + bx_n - 1 << " of every " << bx;
  if (by > 0) os << " rows " << by_lo << ".." << by_lo + by_n - 1 << " of every " << by;
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
