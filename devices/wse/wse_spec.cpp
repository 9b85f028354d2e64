// The generation tables of wse_spec.h and the provider options that adjust them.
#include "devices/wse/wse_spec.h"

#include <cstdlib>

namespace pyflame_rt {

namespace {

WseSpec make_wse2() {
  WseSpec s;
  s.name = "wse2";
  s.generation = WseGeneration::kWse2;
  s.published_pes = 850000;
  s.fabric_width = 757;
  s.fabric_height = 996;
  s.usable_width = 750;  // published
  s.usable_height = 994;
  s.simd_fp16 = 4;
  s.total_sram_bytes = 40e9;
  s.memory_bandwidth_bps = 20e15;
  s.fabric_bandwidth_bps = 220e15;
  return s;
}

WseSpec make_wse3() {
  WseSpec s;
  s.name = "wse3";
  s.generation = WseGeneration::kWse3;
  s.published_pes = 900000;
  s.fabric_width = 762;
  s.fabric_height = 1176;
  s.usable_width = 762 - 7;  // 755 (derived: fabric minus the memcpy margin)
  s.usable_height = 1176 - 2;
  s.simd_fp16 = 8;
  s.total_sram_bytes = 44e9;
  s.memory_bandwidth_bps = 21e15;
  s.fabric_bandwidth_bps = 214e15;
  return s;
}

// A positive integer option, or an error naming the key and the value.
Expected<int64_t> positive_int(const std::string& key, const std::string& text, int64_t max) {
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 1 || v > max) {
    return invalid_argument("wafer provider option '", key, "': expected an integer in 1..", max, ", got '", text, "'");
  }
  return static_cast<int64_t>(v);
}

}  // namespace

const WseSpec& wse_spec(WseGeneration generation) {
  static const WseSpec wse2 = make_wse2();
  static const WseSpec wse3 = make_wse3();
  return generation == WseGeneration::kWse2 ? wse2 : wse3;
}

Expected<WseSpec> wse_spec_by_name(const std::string& name) {
  if (name == "wse2") return wse_spec(WseGeneration::kWse2);
  if (name == "wse3" || name == "wse") return wse_spec(WseGeneration::kWse3);
  return make_status(StatusCode::kNotFound, "unknown wafer generation '", name, "' (known: wse2, wse3, wse)");
}

Expected<WseSpec> wse_spec_with_options(const WseSpec& base, const std::map<std::string, std::string>& options) {
  WseSpec s = base;
  if (auto g = options.find("generation"); g != options.end()) {
    ASSIGN_OR_RETURN(s, wse_spec_by_name(g->second));
  }
  for (const auto& [key, value] : options) {
    if (key == "generation") continue;
    if (key == "fabric") {
      size_t x = value.find('x');
      if (x == std::string::npos) {
        return invalid_argument("wafer provider option 'fabric': expected WxH (e.g. 64x48), got '", value, "'");
      }
      ASSIGN_OR_RETURN(int64_t w, positive_int(key, value.substr(0, x), s.usable_width));
      ASSIGN_OR_RETURN(int64_t h, positive_int(key, value.substr(x + 1), s.usable_height));
      s.usable_width = static_cast<int>(w);
      s.usable_height = static_cast<int>(h);
      s.fabric_width = s.usable_width + s.fabric_margin_x;
      s.fabric_height = s.usable_height + s.fabric_margin_y;
    } else if (key == "systems") {
      ASSIGN_OR_RETURN(int64_t n, positive_int(key, value, 1024));
      s.systems = static_cast<int>(n);
    } else if (key == "channels") {
      ASSIGN_OR_RETURN(int64_t n, positive_int(key, value, s.max_io_channels));
      s.io_channels = static_cast<int>(n);
    } else if (key == "code_reserve") {
      ASSIGN_OR_RETURN(int64_t n, positive_int(key, value, s.sram_bytes_per_pe - 1));
      s.code_reserve_bytes = n;
    } else {
      return invalid_argument("unknown wafer provider option '", key,
                              "' (known: fabric, generation, systems, channels, code_reserve)");
    }
  }
  return s;
}

}  // namespace pyflame_rt
