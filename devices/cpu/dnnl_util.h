// oneDNN plumbing for the CPU device: the engine, a stream per thread, descriptor helpers, and
// CpuValue — a tensor that may live in a oneDNN (possibly blocked) layout between native ops
// and is turned into a plain row-major Tensor only when something needs it plain.
#pragma once

#include <memory>

#include <oneapi/dnnl/dnnl.hpp>

#include "graph/memory_budget.h"
#include "graph/value.h"

namespace pyflame_rt {
namespace cpu {

dnnl::engine& engine();
dnnl::stream& thread_stream();  // one stream per calling thread

dnnl::memory::dims to_dnnl(const Dims& d);
dnnl::memory::format_tag plain_tag(size_t rank);  // a, ab, abc, abcd, ...
dnnl::memory::desc plain_desc(const Dims& d);      // f32, row-major

// A value flowing between steps of a CPU program.
struct CpuValue {
  Value plain;          // set when has_plain
  dnnl::memory native;  // set when has_native: f32 data in native.get_desc()'s layout
  // The pooled storage `native` points into (devices/cpu/buffer_pool.h), null when oneDNN owns
  // it. Shared by every copy of the value: the buffer returns to its pool after the last one.
  std::shared_ptr<void> buffer;
  Dims dims;            // logical dims when has_native
  bool has_plain = false;
  bool has_native = false;
  // Set by the program on a value whose step is its last reader (and reads it once): the op
  // may write into its native buffer instead of copying it (a residual summed in place).
  bool last_use = false;

  static CpuValue from_plain(Value v) {
    CpuValue c;
    c.plain = std::move(v);
    c.has_plain = true;
    return c;
  }
  static CpuValue from_native(dnnl::memory m, Dims dims, std::shared_ptr<void> buffer = nullptr) {
    CpuValue c;
    c.native = std::move(m);
    c.buffer = std::move(buffer);
    c.dims = std::move(dims);
    c.has_native = true;
    return c;
  }
  // A new native value with `desc`'s layout, its contents undefined: how every native op
  // allocates an output. The buffer comes from the pool of the current run when there is one
  // (BufferPool::current()), else from oneDNN.
  static CpuValue allocate_native(const dnnl::memory::desc& desc, Dims dims);
  // The value as a plain Tensor/Value (reorders once and keeps the result).
  const Value& as_plain();
  // The value as f32 memory with exactly `desc` (reordering when its layout differs).
  // Only for f32 tensors.
  dnnl::memory as_native(const dnnl::memory::desc& desc);
};

// Scratchpad memory for one execution of a primitive built with user-managed scratchpads
// (dnnl::scratchpad_mode::user: one primitive can then run on several threads at once). In a
// run it comes from the run's buffer pool, so it is reused like any buffer and charged to
// SessionOptions.memory_limit_mb while the step holds it: a GRU's scratchpad is about 20 times
// its output (time steps x gates x hidden), and it was the largest allocation a limit did not
// see. Past the limit the constructor throws std::bad_alloc naming "a oneDNN scratchpad" in the
// budget's message. Outside a run (no pool) oneDNN allocates it, still charged to a budget if
// one is installed. Keep the object alive until the primitive has executed (and the stream
// waited): the memory is freed with it.
//
//   Scratchpad scratch(plan->scratch);
//   prim.execute(thread_stream(), {..., {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
class Scratchpad {
 public:
  explicit Scratchpad(const dnnl::memory::desc& desc);
  ~Scratchpad();
  Scratchpad(const Scratchpad&) = delete;
  Scratchpad& operator=(const Scratchpad&) = delete;
  const dnnl::memory& memory() const { return memory_; }

 private:
  std::shared_ptr<void> buffer_;           // the pooled storage (null: oneDNN owns it)
  std::shared_ptr<MemoryBudget> charged_;  // credited back on destruction (no pool only)
  dnnl::memory memory_;
};

}  // namespace cpu
}  // namespace pyflame_rt
