// The CPU device: native kernels (oneDNN primitives and our own AVX2/AVX-512 loops) where they
// exist, the reference kernels elsewhere, node by node. Created through the DeviceRegistry as
// "cpu" (CPUExecutionProvider), or directly in tests:
//
//   std::unique_ptr<Device> cpu = make_cpu_device(/*num_threads=*/2);
//   ASSIGN_OR_RETURN(auto exe, cpu->compile(graph));
#pragma once

#include <memory>

#include "devices/device.h"

namespace pyflame_rt {

// Everything the CPU device can be told (from the session's DeviceConfig).
struct CpuDeviceOptions {
  int num_threads = 0;             // 0 = one per core
  bool parallel_branches = false;  // execution_mode "parallel"
  // enable_memory_reuse: an output's buffer is reused, once its last reader ran, for a later
  // output; false: every output its own allocation, freed when released.
  bool memory_reuse = true;
  // memory_pool "arena" (the session's default): a run's buffers are kept for later runs (no
  // allocation in a steady state, one run's peak held per concurrent run); false ("default"):
  // returned to the system at the end of each run. Ignored without memory_reuse.
  bool memory_arena = true;
  // Denormal floats flushed to zero during runs (cpu/denormals.h): SessionOptions'
  // "session.set_denormal_as_zero" = "1". Off by default, as in ONNX Runtime.
  bool flush_denormals = false;
};

// num_threads 0 = one per core. parallel_branches: nodes that do not depend on each other run
// at the same time on up to two workers, each with its share of the threads.
std::unique_ptr<Device> make_cpu_device(int num_threads, bool parallel_branches = false);
std::unique_ptr<Device> make_cpu_device(const CpuDeviceOptions& options);

}  // namespace pyflame_rt
