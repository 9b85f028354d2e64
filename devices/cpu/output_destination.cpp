#include "devices/cpu/output_destination.h"

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

Tensor plain_output_tensor(DType dtype, const Dims& dims) {
  // The caller keeps the bound buffer alive for the whole run: no keep-alive here.
  if (void* p = OutputDestination::claim(dtype, dims)) return Tensor::wrap(dtype, dims, p, nullptr);
  return Tensor(dtype, dims);
}

}  // namespace cpu
}  // namespace pyflame_rt
