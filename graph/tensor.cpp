#include "graph/tensor.h"

#include "graph/memory_budget.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

namespace pyflame_rt {

namespace {
constexpr size_t kAlignment = 64;
}

TensorBuffer::TensorBuffer(DType dtype, size_t count) {
  bytes_ = count * dtype_size(dtype);
  size_t alloc = (bytes_ + kAlignment - 1) / kAlignment * kAlignment;
  if (alloc == 0) alloc = kAlignment;
  charged_ = charge_current_budget(alloc);  // a run under memory_limit_mb: refused past it
  charged_bytes_ = alloc;
  data_ = std::aligned_alloc(kAlignment, alloc);
  if (!data_) {
    if (charged_) charged_->release(alloc);
    throw std::bad_alloc();
  }
  if (dtype == DType::kString) {
    auto* s = static_cast<std::string*>(data_);
    for (size_t i = 0; i < count; ++i) new (s + i) std::string();
    string_count_ = count;
  } else {
    std::memset(data_, 0, alloc);
  }
}

TensorBuffer::TensorBuffer(void* external, size_t bytes, std::shared_ptr<void> keep_alive)
    : data_(external), bytes_(bytes), owned_(false), keep_alive_(std::move(keep_alive)) {}

TensorBuffer::~TensorBuffer() {
  if (!owned_) return;
  auto* s = static_cast<std::string*>(data_);
  for (size_t i = 0; i < string_count_; ++i) s[i].~basic_string();
  std::free(data_);
  if (charged_) charged_->release(charged_bytes_);
}

size_t Tensor::allocation_bytes(DType dtype, const Dims& dims) {
  // Dims come from model data and feeds: a product that overflows (or a negative dim) must
  // fail like any allocation that cannot be satisfied, not wrap around to a small buffer.
  uint64_t count = 1;
  bool empty = false;  // a zero dim: nothing to hold, however large the others (found by fuzzing)
  for (int64_t d : dims) {
    if (d < 0) throw std::bad_alloc();
    empty = empty || d == 0;
  }
  for (int64_t d : dims) {
    if (!empty && __builtin_mul_overflow(count, static_cast<uint64_t>(d), &count)) throw std::bad_alloc();
  }
  if (empty) count = 0;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(count, static_cast<uint64_t>(std::max<size_t>(dtype_size(dtype), 1)), &bytes) ||
      bytes > (uint64_t{1} << 48)) {
    throw std::bad_alloc();
  }
  return static_cast<size_t>(bytes);
}

Tensor::Tensor(DType dtype, Dims dims) : dtype_(dtype), dims_(std::move(dims)) {
  allocation_bytes(dtype_, dims_);  // throws std::bad_alloc for dims no buffer can hold
  buffer_ = std::make_shared<TensorBuffer>(dtype, static_cast<size_t>(num_elements(dims_)));
}

Tensor Tensor::wrap(DType dtype, Dims dims, void* data, std::shared_ptr<void> keep_alive) {
  Tensor t;
  t.dtype_ = dtype;
  t.dims_ = std::move(dims);
  t.buffer_ = std::make_shared<TensorBuffer>(data, t.nbytes(), std::move(keep_alive));
  return t;
}

Tensor Tensor::reshaped(Dims dims) const {
  Tensor t = *this;
  t.dims_ = std::move(dims);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return Tensor();
  Tensor t(dtype_, dims_);
  if (dtype_ == DType::kString) {
    const auto* src = data<std::string>();
    auto* dst = t.data<std::string>();
    for (int64_t i = 0; i < numel(); ++i) dst[i] = src[i];
  } else if (nbytes() > 0) {
    std::memcpy(t.raw_data(), raw_data(), nbytes());
  }
  return t;
}

double Tensor::value_as_double(int64_t i) const {
  double v = 0;
  dispatch_numeric(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
      v = static_cast<float>(data<T>()[i]);
    } else {
      v = static_cast<double>(data<T>()[i]);
    }
  });
  return v;
}

int64_t Tensor::value_as_int64(int64_t i) const {
  int64_t v = 0;
  // A float element read as an integer (a count, an axis, a flag: any kernel reading a scalar
  // input) is a model's value: NaN, infinities and values past int64 were undefined
  // conversions (Dropout's training_mode of NaN; UBSan, kernel_run). NaN is 0, the rest
  // saturates at int64's limits (2^63 as a double is one past the max, hence >=).
  auto from_floating = [](double d) -> int64_t {
    if (std::isnan(d)) return 0;
    if (d >= 9223372036854775808.0) return std::numeric_limits<int64_t>::max();
    if (d <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
    return static_cast<int64_t>(d);
  };
  dispatch_numeric(dtype_, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
      v = from_floating(static_cast<float>(data<T>()[i]));
    } else if constexpr (std::is_floating_point_v<T>) {
      v = from_floating(static_cast<double>(data<T>()[i]));
    } else {
      v = static_cast<int64_t>(data<T>()[i]);
    }
  });
  return v;
}

std::vector<int64_t> Tensor::to_int64_vector() const {
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  for (int64_t i = 0; i < numel(); ++i) out[static_cast<size_t>(i)] = value_as_int64(i);
  return out;
}

std::string Tensor::summary() const { return std::string(dtype_name(dtype_)) + dims_to_string(dims_); }

}  // namespace pyflame_rt
