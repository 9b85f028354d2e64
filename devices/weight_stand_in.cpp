#include "devices/weight_stand_in.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

namespace pyflame_rt {

namespace {

// The live stand-ins, start -> size, for is_weight_stand_in.
std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<uintptr_t, size_t>& registry() {
  static std::map<uintptr_t, size_t> r;
  return r;
}

}  // namespace

Expected<Tensor> weight_stand_in(DType dtype, const Dims& dims) {
  if (dtype == DType::kString || dtype == DType::kUndefined) {
    return invalid_argument("weight stand-in: dtype ", dtype_name(dtype), " has no fixed-size elements");
  }
  int64_t numel = 1;
  for (int64_t d : dims) {
    if (d < 0 || (d > 0 && numel > (int64_t{1} << 40) / d)) {
      return invalid_argument("weight stand-in: dims ", dims_to_string(dims), " out of range");
    }
    numel *= d;
  }
  size_t bytes = std::max<size_t>(1, static_cast<size_t>(numel) * dtype_size(dtype));
  // Readable and writable (a kernel may write into its weights' copy, as into a mapped plan's
  // private pages), reserved lazily: untouched pages are the kernel's shared zero page.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return make_status(StatusCode::kResourceExhausted, "weight stand-in of ", bytes, " bytes: ", std::strerror(errno));
  }
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    registry()[reinterpret_cast<uintptr_t>(p)] = bytes;
  }
  std::shared_ptr<void> owner(p, [bytes](void* q) {
    {
      std::lock_guard<std::mutex> lock(registry_mutex());
      registry().erase(reinterpret_cast<uintptr_t>(q));
    }
    ::munmap(q, bytes);
  });
  return Tensor::wrap(dtype, dims, p, std::move(owner));
}

bool is_weight_stand_in(const Tensor& t) {
  const void* data = t.raw_data();
  if (!data) return false;
  auto at = reinterpret_cast<uintptr_t>(data);
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto it = registry().upper_bound(at);
  if (it == registry().begin()) return false;
  --it;
  return at < it->first + it->second;
}

}  // namespace pyflame_rt
