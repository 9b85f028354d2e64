#include "devices/cpu/output_destination.h"

#include "devices/cpu/buffer_pool.h"

namespace pyflame_rt {
namespace cpu {

namespace {
thread_local const Tensor* t_target = nullptr;
thread_local bool t_claimed = false;
}  // namespace

void* OutputDestination::claim(DType dtype, const Dims& dims) {
  if (!t_target || t_claimed || t_target->dtype() != dtype || t_target->dims() != dims) return nullptr;
  t_claimed = true;
  return const_cast<void*>(t_target->raw_data());
}

bool OutputDestination::pending() { return t_target && !t_claimed; }

OutputDestination::Scope::Scope(const Tensor* target) : previous_(t_target), previous_claimed_(t_claimed) {
  t_target = target;
  t_claimed = false;
}

OutputDestination::Scope::~Scope() {
  t_target = previous_;
  t_claimed = previous_claimed_;
}

Tensor pooled_tensor(DType dtype, const Dims& dims) {
  // In a run, the run's pool, as the oneDNN outputs get theirs: a buffer reused across runs
  // and left unset (the caller writes every element). A new Tensor would zero it first and,
  // for large ones, fault fresh pages in on every run (7% of MaxViT-T's run in memset alone).
  BufferPool* pool = BufferPool::current();
  if (pool && dtype != DType::kString && dtype != DType::kUndefined) {
    // Checked (num_elements saturates and the product wrapped: a ConstantOfShape of 2^62 + 1
    // floats got a 4-byte buffer and wrote past it; kernel_run).
    const size_t bytes = Tensor::allocation_bytes(dtype, dims);
    if (bytes > 0) {
      std::shared_ptr<void> buffer = pool->acquire(bytes);
      void* p = buffer.get();
      return Tensor::wrap(dtype, dims, p, std::move(buffer));
    }
  }
  return Tensor(dtype, dims);
}

Tensor plain_output_tensor(DType dtype, const Dims& dims) {
  // The caller keeps the bound buffer alive for the whole run: no keep-alive here.
  if (void* p = OutputDestination::claim(dtype, dims)) return Tensor::wrap(dtype, dims, p, nullptr);
  return pooled_tensor(dtype, dims);
}

}  // namespace cpu
}  // namespace pyflame_rt
