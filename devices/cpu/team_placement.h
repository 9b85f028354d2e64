// Keeps a run's OpenMP threads off each other's CPU.
//
// A parallel region needs all its threads running at once. Beside other work (two niced
// processes on the 2 cores), Linux placed a process's new OpenMP worker on the CPU of the
// thread that created it, and its load balancer took ~100 ms to move it: until then the two
// threads shared one CPU, every region waited for a time slice, and audio_tdnn at 2 threads
// took ~8 ms a run against ~0.9 once they were apart (docs/performance.md, stop 24; ONNX
// Runtime's spinning pool showed it as load at once). So, at most every kPlacementCheck on a
// calling thread, a run asks each thread of its team where it runs; a worker on the calling
// thread's CPU moves to another CPU of its affinity mask (set without that CPU, then set back:
// the kernel moves it at once and leaves it there), when the mask has another.
#pragma once

#include <sched.h>

#include <chrono>
#include <optional>

namespace pyflame_rt {
namespace cpu {

constexpr std::chrono::milliseconds kPlacementCheck{25};

// The mask a worker on `own_cpu` should take for a moment to leave the calling thread's
// `caller_cpu`: `allowed` without `caller_cpu`, or nullopt when the worker is elsewhere, or
// `allowed` has no other CPU (the user confined the process to one) or does not hold it.
std::optional<cpu_set_t> mask_to_leave(const cpu_set_t& allowed, int caller_cpu, int own_cpu);

// One check of the calling thread's team of `threads`: a parallel region in which each worker
// on the caller's CPU moves away. Returns how many moved (0 when none shared it).
int spread_team(int threads);

// spread_team at most every kPlacementCheck on the calling thread (at the next call again
// when it moved a worker), for `threads` > 1.
void keep_team_apart(int threads);

// Workers moved so far, process-wide (for tests and metrics).
unsigned long long team_workers_moved();

}  // namespace cpu
}  // namespace pyflame_rt
