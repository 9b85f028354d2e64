// Tensor: a dtype, concrete dims and a shared, 64-byte aligned buffer (views share it).
//
//   Tensor t(DType::kFloat32, {2, 3});      // zero-filled
//   float* p = t.data<float>();
//   Tensor r = t.reshaped({3, 2});          // a view: same buffer
//   Tensor c = t.clone();                   // a deep copy
//
// String tensors hold std::string elements (constructed and destroyed by the buffer).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/dtype.h"
#include "graph/shape.h"

namespace pyflame_rt {

class MemoryBudget;  // graph/memory_budget.h

class TensorBuffer {
 public:
  TensorBuffer(DType dtype, size_t count);  // zero-filled (strings: empty)
  // Wraps external memory the buffer does not own; `keep_alive` holds its owner.
  TensorBuffer(void* external, size_t bytes, std::shared_ptr<void> keep_alive);
  ~TensorBuffer();
  TensorBuffer(const TensorBuffer&) = delete;
  TensorBuffer& operator=(const TensorBuffer&) = delete;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  size_t string_count_ = 0;  // > 0 when the buffer holds constructed std::strings
  bool owned_ = true;
  std::shared_ptr<void> keep_alive_;
  std::shared_ptr<MemoryBudget> charged_;  // the run's budget this buffer counts against
  size_t charged_bytes_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(DType dtype, Dims dims);
  // The bytes a tensor of `dims` needs; throws std::bad_alloc for a negative dim, a product past
  // int64 or more than 2^48 bytes (dims come from models and feeds). Allocators outside Tensor
  // (the CPU device's pool) size their buffers with it.
  static size_t allocation_bytes(DType dtype, const Dims& dims);
  // Wraps memory owned elsewhere (no copy). The caller keeps it alive via keep_alive.
  static Tensor wrap(DType dtype, Dims dims, void* data, std::shared_ptr<void> keep_alive);
  template <typename T>
  static Tensor from_vector(Dims dims, const std::vector<T>& values);
  template <typename T>
  static Tensor scalar(T value) { return from_vector<T>({}, {value}); }

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Dims& dims() const { return dims_; }
  size_t rank() const { return dims_.size(); }
  int64_t dim(size_t i) const { return dims_[i]; }
  int64_t numel() const { return num_elements(dims_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }

  void* raw_data() { return buffer_ ? static_cast<char*>(buffer_->data()) + offset_ : nullptr; }
  const void* raw_data() const {
    return buffer_ ? static_cast<const char*>(buffer_->data()) + offset_ : nullptr;
  }
  template <typename T> T* data() { return static_cast<T*>(raw_data()); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw_data()); }

  // A view with other dims and the same element count; shares the buffer.
  Tensor reshaped(Dims dims) const;
  Tensor clone() const;
  // Element i converted to double / int64 (any numeric dtype): for shape-like inputs.
  double value_as_double(int64_t i) const;
  int64_t value_as_int64(int64_t i) const;
  std::vector<int64_t> to_int64_vector() const;  // whole tensor as int64s
  bool shares_buffer_with(const Tensor& o) const { return buffer_ && buffer_ == o.buffer_; }
  std::string summary() const;  // "float32[2,3]"

 private:
  DType dtype_ = DType::kUndefined;
  Dims dims_;
  std::shared_ptr<TensorBuffer> buffer_;
  size_t offset_ = 0;
};

template <typename T>
Tensor Tensor::from_vector(Dims dims, const std::vector<T>& values) {
  Tensor t(DTypeOf<T>::value, std::move(dims));
  T* p = t.data<T>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) p[i] = values[i];
  return t;
}
// std::vector<bool> is bit-packed: copy it element by element.
template <>
inline Tensor Tensor::from_vector<bool>(Dims dims, const std::vector<bool>& values) {
  Tensor t(DType::kBool, std::move(dims));
  bool* p = t.data<bool>();
  for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < t.numel(); ++i) p[i] = values[i];
  return t;
}

}  // namespace pyflame_rt
