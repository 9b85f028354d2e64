// Sets the calling thread's OpenMP team size (n > 0) until the scope ends: recurrent kernels
// run small steps on one thread (a second one costs more in synchronisation per step than it
// computes) and large ones on the run's team.
#pragma once

#include <omp.h>

namespace pyflame_rt {
namespace cpu {

class OmpThreadsWhile {
 public:
  explicit OmpThreadsWhile(int n) : saved_(omp_get_max_threads()) {
    if (n > 0) omp_set_num_threads(n);
  }
  ~OmpThreadsWhile() { omp_set_num_threads(saved_); }
  OmpThreadsWhile(const OmpThreadsWhile&) = delete;
  OmpThreadsWhile& operator=(const OmpThreadsWhile&) = delete;

 private:
  int saved_;
};

// The team for a recurrent step of batch x gates*H x H multiply-adds: below ~1M, one thread.
inline int recurrent_step_team(int64_t batch, int64_t gates, int64_t H) {
  return batch * gates * H * H < (int64_t{1} << 20) ? 1 : 0;
}

}  // namespace cpu
}  // namespace pyflame_rt
