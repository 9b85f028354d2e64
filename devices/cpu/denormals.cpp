#include "devices/cpu/denormals.h"

#include <omp.h>
#include <xmmintrin.h>

namespace pyflame_rt {
namespace cpu {

namespace {

constexpr unsigned kFlushToZero = 0x8000;      // MXCSR.FTZ: denormal results are 0
constexpr unsigned kDenormalsAreZero = 0x0040;  // MXCSR.DAZ: denormal inputs read as 0
constexpr unsigned kBoth = kFlushToZero | kDenormalsAreZero;

// How many threads of this thread's OpenMP team (libgomp keeps a pool of workers per thread
// that starts parallel regions) flush: 1 is the caller alone, i.e. no worker.
thread_local int team_flushing = 1;

// Sets or clears both bits on every thread of a team of `threads` but the caller's.
void set_workers(int threads, bool flush) {
  const unsigned caller = _mm_getcsr();
#pragma omp parallel num_threads(threads)
  _mm_setcsr(flush ? (_mm_getcsr() | kBoth) : (_mm_getcsr() & ~kBoth));
  _mm_setcsr(caller);
}

}  // namespace

FlushDenormalsScope::FlushDenormalsScope(bool enable, int threads) {
  if (!enable) {
    // A run that keeps denormals after one that flushed on this thread: its workers too.
    if (team_flushing > 1) {
      set_workers(team_flushing, false);
      team_flushing = 1;
    }
    return;
  }
  saved_ = _mm_getcsr();
  active_ = true;
  if ((saved_ | kBoth) != saved_) _mm_setcsr(saved_ | kBoth);
  if (threads > team_flushing) {
    set_workers(threads, true);
    team_flushing = threads;
  }
}

FlushDenormalsScope::~FlushDenormalsScope() {
  if (active_) _mm_setcsr(saved_);
}

bool flushing_denormals() { return (_mm_getcsr() & kBoth) == kBoth; }

}  // namespace cpu
}  // namespace pyflame_rt
