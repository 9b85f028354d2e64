// plan_svg: the placement on the fabric as SVG. Deterministic (same report, same bytes), sized
// to at most 1000 px across whatever the fabric's dims, one colour per partition from a fixed
// palette, the label inside the rectangle when it fits and in a legend below in any case.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "plan_command.h"

namespace pyflame_rt {

namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  return buf;
}

// The ops of a partition, shortened: "conv1 .. fc (7 ops)".
std::string ops_label(const nlohmann::json& part) {
  if (!part.contains("ops") || part["ops"].empty()) return "";
  const auto& ops = part["ops"];
  std::string first = ops.front().value("node", ""), last = ops.back().value("node", "");
  if (ops.size() == 1) return first;
  return first + " .. " + last + " (" + std::to_string(ops.size()) + " ops)";
}

}  // namespace

std::string plan_svg(const nlohmann::json& report) {
  static const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                   "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  const int fw = report.contains("fabric") ? report["fabric"][0].get<int>() : 1;
  const int fh = report.contains("fabric") ? report["fabric"][1].get<int>() : 1;
  const int systems = std::max(1, report.value("systems", 1));
  const double gap = fw * 0.05;
  const double scale = std::min(1000.0 / (systems * fw + (systems - 1) * gap), 700.0 / fh);
  const double margin = 20, legend_line = 16;
  const auto& parts = report.contains("partitions") ? report["partitions"] : nlohmann::json::array();
  const double width = 2 * margin + scale * (systems * fw + (systems - 1) * gap);
  const double height = 2 * margin + scale * fh + 30 + legend_line * (parts.size() + 1);
  std::ostringstream os;
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << num(width) << "\" height=\"" << num(height)
     << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  os << "  <title>" << esc(report.value("device", "")) << " placement: " << parts.size() << " partitions, "
     << report.value("pes_used", int64_t{0}) << " PEs</title>\n";
  for (int s = 0; s < systems; ++s) {
    const double x0 = margin + s * scale * (fw + gap);
    os << "  <rect x=\"" << num(x0) << "\" y=\"" << num(margin) << "\" width=\"" << num(scale * fw) << "\" height=\""
       << num(scale * fh) << "\" fill=\"#f4f4f4\" stroke=\"#333\"/>\n";
    os << "  <text x=\"" << num(x0) << "\" y=\"" << num(margin - 6) << "\">system " << s << ": " << fw << " x " << fh
       << " PEs</text>\n";
  }
  size_t i = 0;
  for (const auto& p : parts) {
    const auto& r = p["rect"];
    const int sys = p.value("system", 0);
    const double x = margin + sys * scale * (fw + gap) + scale * r[0].get<double>();
    const double y = margin + scale * r[1].get<double>();
    const double w = std::max(1.0, scale * r[2].get<double>()), h = std::max(1.0, scale * r[3].get<double>());
    const std::string colour = kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
    const std::string label = "p" + std::to_string(p.value("id", static_cast<int>(i)));
    os << "  <g>\n    <title>" << label << ": " << p.value("pes", int64_t{0}) << " PEs at [" << r[0] << ", " << r[1]
       << ", " << r[2] << ", " << r[3] << "], " << esc(ops_label(p)) << "</title>\n";
    os << "    <rect x=\"" << num(x) << "\" y=\"" << num(y) << "\" width=\"" << num(w) << "\" height=\"" << num(h)
       << "\" fill=\"" << colour << "\" fill-opacity=\"0.8\" stroke=\"#222\" stroke-width=\"0.5\"/>\n";
    if (w >= 24 && h >= 14) {
      os << "    <text x=\"" << num(x + 3) << "\" y=\"" << num(y + 12) << "\">" << label << "</text>\n";
    }
    os << "  </g>\n";
    const double ly = margin + scale * fh + 30 + legend_line * i;
    os << "  <rect x=\"" << num(margin) << "\" y=\"" << num(ly - 9) << "\" width=\"10\" height=\"10\" fill=\"" << colour
       << "\"/>\n  <text x=\"" << num(margin + 14) << "\" y=\"" << num(ly) << "\">" << label << "  "
       << p.value("pes", int64_t{0}) << " PEs  [" << r[0] << ", " << r[1] << ", " << r[2] << ", " << r[3] << "]  "
       << esc(ops_label(p)) << "</text>\n";
    ++i;
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace pyflame_rt
