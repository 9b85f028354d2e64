// Denormal floats flushed to zero during the CPU device's runs (x86 MXCSR FTZ and DAZ).
//
// An arithmetic instruction that reads or writes a denormal (|x| < 1.2e-38) takes a microcode
// assist, about 100 times its normal cost. Models make them: Swin's shifted-window attention
// adds a -100 mask before its Softmax, whose outputs exp(-100) ~ 3.7e-44 then go through a
// MatMul; three such MatMuls took 8 ms each against 0.3 ms for the unmasked ones (Swin-T,
// stop 16; ONNX Runtime, which keeps denormals by default, pays the same). Flushed, those
// values are 0, their products exact zeros: the change in any output is below 1.2e-38 per term.
// TensorFlow flushes by default too; ONNX Runtime has it as "session.set_denormal_as_zero".
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
