#include "devices/cpu/omp_wait_policy.h"

#include <cstdlib>

namespace pyflame_rt {
namespace cpu {

std::optional<EnvSetting> choose_omp_wait_setting(const char* wait_policy, const char* spin_count) {
  if (wait_policy || spin_count) return std::nullopt;
  return EnvSetting{"GOMP_SPINCOUNT", kBriefSpinCount};
}

std::optional<EnvSetting> apply_omp_wait_setting() {
  auto setting = choose_omp_wait_setting(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"));
  if (!setting || setenv(setting->name.c_str(), setting->value.c_str(), /*overwrite=*/0) != 0) return std::nullopt;
  return setting;
}

}  // namespace cpu
}  // namespace pyflame_rt
