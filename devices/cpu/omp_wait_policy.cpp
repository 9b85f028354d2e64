#include "devices/cpu/omp_wait_policy.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace pyflame_rt {
namespace cpu {

std::optional<EnvSetting> choose_omp_wait_setting(const char* wait_policy, const char* spin_count,
                                                  const LoadFigures& load) {
  // An empty value counts as set: the user asked for libgomp's default.
  if (wait_policy || spin_count) return std::nullopt;
  if (load.online_cpus <= 0) return std::nullopt;
  bool loaded = (load.load_1min >= 0 && load.load_1min >= load.online_cpus) ||
                (load.runnable_others >= 0 && load.runnable_others >= load.online_cpus);
  if (!loaded) return std::nullopt;
  return EnvSetting{"OMP_WAIT_POLICY", "passive"};
}

namespace {

// The number after `key` on its line of /proc/stat (procs_running), -1 when absent.
long proc_stat_field(const std::string& key) {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, key.size() + 1, key + " ") == 0) return std::strtol(line.c_str() + key.size() + 1, nullptr, 10);
  }
  return -1;
}

}  // namespace

LoadFigures read_load_figures() {
  LoadFigures f;
  double load[1];
  if (getloadavg(load, 1) == 1) f.load_1min = load[0];
  long running = proc_stat_field("procs_running");
  if (running > 0) f.runnable_others = static_cast<int>(running - 1);  // this thread is running
  f.online_cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  return f;
}

std::optional<EnvSetting> apply_omp_wait_policy_for_load() {
  auto setting = choose_omp_wait_setting(std::getenv("OMP_WAIT_POLICY"), std::getenv("GOMP_SPINCOUNT"),
                                         read_load_figures());
  if (!setting || setenv(setting->name.c_str(), setting->value.c_str(), /*overwrite=*/0) != 0) return std::nullopt;
  return setting;
}

}  // namespace cpu
}  // namespace pyflame_rt
