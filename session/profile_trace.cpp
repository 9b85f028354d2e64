#include "session/profile_trace.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <ctime>
#include <fstream>
#include <functional>
#include <thread>

#include <nlohmann/json.hpp>

namespace pyflame_rt {

Expected<std::string> write_profile_trace(const std::string& prefix, const std::vector<TraceEvent>& events) {
  static std::atomic<int> traces{0};
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &local);
  const int pid = static_cast<int>(getpid());
  std::string path = prefix + "_" + stamp + "_" + std::to_string(pid) + "_" + std::to_string(traces++) + ".json";

  nlohmann::json out = nlohmann::json::array();
  const auto tid = static_cast<int64_t>(std::hash<std::thread::id>()(std::this_thread::get_id()) & 0x7fffffff);
  for (const auto& e : events) {
    out.push_back({{"cat", e.cat},
                   {"pid", pid},
                   {"tid", tid},
                   {"dur", static_cast<int64_t>(std::llround(e.dur_us))},
                   {"ts", static_cast<int64_t>(std::llround(e.ts_us))},
                   {"ph", "X"},
                   {"name", e.name},
                   {"args", e.args}});
  }
  std::ofstream file(path);
  if (!file) return make_status(StatusCode::kFail, "cannot write the profile '", path, "'");
  file << out.dump(1) << "\n";
  if (!file) return make_status(StatusCode::kFail, "writing the profile '", path, "' failed");
  return path;
}

}  // namespace pyflame_rt
