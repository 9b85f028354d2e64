// Optimisation levels (values match the seed API's OptLevel and ONNX Runtime's
// GraphOptimizationLevel ordering).
#pragma once

namespace pyflame_rt {

enum class OptLevel { kNone = 0, kBasic = 1, kExtended = 2, kAll = 3 };

inline const char* opt_level_name(OptLevel level) {
  switch (level) {
    case OptLevel::kNone: return "NONE";
    case OptLevel::kBasic: return "BASIC";
    case OptLevel::kExtended: return "EXTENDED";
    case OptLevel::kAll: return "ALL";
  }
  return "?";
}

}  // namespace pyflame_rt
