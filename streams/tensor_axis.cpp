#include "streams/tensor_axis.h"

#include <cstring>

namespace pyflame_rt {
namespace {

// Bytes of one step along `axis` (the product of the dims after it, times the element size),
// and the number of blocks before it.
size_t step_bytes(const Dims& dims, size_t axis, DType dtype) {
  int64_t inner = 1;
  for (size_t i = axis + 1; i < dims.size(); ++i) inner *= dims[i];
  return static_cast<size_t>(inner) * dtype_size(dtype);
}
int64_t outer_blocks(const Dims& dims, size_t axis) {
  int64_t outer = 1;
  for (size_t i = 0; i < axis; ++i) outer *= dims[i];
  return outer;
}

}  // namespace

Tensor concat_along(const std::vector<Tensor>& parts, size_t axis) {
  Dims dims = parts.front().dims();
  dims[axis] = 0;
  for (const Tensor& p : parts) dims[axis] += p.dim(axis);
  DType dtype = parts.front().dtype();
  Tensor out(dtype, dims);
  size_t step = step_bytes(dims, axis, dtype);
  int64_t outer = outer_blocks(dims, axis);
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor& p : parts) {
      size_t block = step * static_cast<size_t>(p.dim(axis));
      if (block) std::memcpy(dst, static_cast<const char*>(p.raw_data()) + o * block, block);
      dst += block;
    }
  }
  return out;
}

Tensor slice_along(const Tensor& t, size_t axis, int64_t begin, int64_t length) {
  Dims dims = t.dims();
  dims[axis] = length;
  Tensor out(t.dtype(), dims);
  size_t step = step_bytes(dims, axis, t.dtype());
  int64_t outer = outer_blocks(dims, axis);
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  size_t src_block = step * static_cast<size_t>(t.dim(axis));
  size_t dst_block = step * static_cast<size_t>(length);
  for (int64_t o = 0; o < outer; ++o) {
    if (dst_block) std::memcpy(dst + o * dst_block, src + o * src_block + begin * step, dst_block);
  }
  return out;
}

Tensor pad_along(const Tensor& t, size_t axis, int64_t length) {
  if (t.dim(axis) == length) return t;
  Dims dims = t.dims();
  dims[axis] = length - t.dim(axis);
  return concat_along({t, Tensor(t.dtype(), dims)}, axis);  // new tensors are zero-filled
}

}  // namespace pyflame_rt
