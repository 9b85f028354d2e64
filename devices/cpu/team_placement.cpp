#include "devices/cpu/team_placement.h"

#include <omp.h>

#include <atomic>

namespace pyflame_rt {
namespace cpu {

namespace {
std::atomic<unsigned long long> g_moved{0};
}  // namespace

std::optional<cpu_set_t> mask_to_leave(const cpu_set_t& allowed, int caller_cpu, int own_cpu) {
  if (caller_cpu < 0 || own_cpu != caller_cpu || caller_cpu >= CPU_SETSIZE) return std::nullopt;
  if (!CPU_ISSET(caller_cpu, &allowed) || CPU_COUNT(&allowed) < 2) return std::nullopt;
  cpu_set_t elsewhere = allowed;
  CPU_CLR(caller_cpu, &elsewhere);
  return elsewhere;
}

int spread_team(int threads) {
  if (threads <= 1) return 0;
  const int caller_cpu = sched_getcpu();
  if (caller_cpu < 0) return 0;
  std::atomic<int> moved{0};
#pragma omp parallel num_threads(threads)
  {
    if (omp_get_thread_num() != 0) {
      cpu_set_t allowed;
      CPU_ZERO(&allowed);
      if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
        auto elsewhere = mask_to_leave(allowed, caller_cpu, sched_getcpu());
        // Setting a mask without the current CPU moves the thread before the call returns;
        // setting the user's mask back keeps it where it now is.
        if (elsewhere && sched_setaffinity(0, sizeof(*elsewhere), &*elsewhere) == 0) {
          sched_setaffinity(0, sizeof(allowed), &allowed);
          moved.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  }
  g_moved.fetch_add(static_cast<unsigned long long>(moved.load()), std::memory_order_relaxed);
  return moved.load();
}

void keep_team_apart(int threads) {
  if (threads <= 1) return;
  thread_local std::chrono::steady_clock::time_point next_check{};
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check) return;
  // A worker just moved may be woken back onto this CPU (seen beside niced work): check at
  // the next run too, until a check finds the team apart.
  next_check = spread_team(threads) > 0 ? now : now + kPlacementCheck;
}

unsigned long long team_workers_moved() { return g_moved.load(std::memory_order_relaxed); }

}  // namespace cpu
}  // namespace pyflame_rt
