// Denormal floats flushed to zero during the CPU device's runs (x86 MXCSR FTZ and DAZ), when
// a session asks for it with ONNX Runtime's "session.set_denormal_as_zero" = "1".
//
// An arithmetic instruction that reads or writes a denormal (|x| < 1.2e-38) takes a microcode
// assist, about 100 times its normal cost. Flushed, a denormal is 0: any output changes by less
// than 1.2e-38 per term, but a comparison with 0 changes (a detector's `score > 0` drops a
// denormal score), hence off by default, as in ONNX Runtime. Where only matrix products read a
// Softmax, its denormals are left flushed without this (softmax_op.cpp).
//
// The calling thread's MXCSR is restored when the scope ends (the caller's own numpy keeps
// IEEE denormals). The OpenMP workers of the calling thread's team are set once and left so:
// setting and restoring them would cost two parallel regions per run (a run that keeps
// denormals after one that flushed on the same thread clears them). Threads created inside
// the scope (the parallel executor's helper, new OpenMP workers) inherit the setting.
#pragma once

namespace pyflame_rt {
namespace cpu {

class FlushDenormalsScope {
 public:
  // `enable` false: changes nothing. `threads`: the size of the team the run will use.
  FlushDenormalsScope(bool enable, int threads);
  ~FlushDenormalsScope();
  FlushDenormalsScope(const FlushDenormalsScope&) = delete;
  FlushDenormalsScope& operator=(const FlushDenormalsScope&) = delete;

 private:
  unsigned saved_ = 0;
  bool active_ = false;
};

// Whether this thread flushes denormals now (MXCSR FTZ and DAZ both set); for tests.
bool flushing_denormals();

}  // namespace cpu
}  // namespace pyflame_rt
