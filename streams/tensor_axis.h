// Copying helpers along one axis (the time axis of a stream): concatenate, slice, zero-pad.
// Numeric and bool dtypes; string tensors are refused by the stream before they get here.
#pragma once

#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {

// All parts share dtype and every dim except `axis`.
Tensor concat_along(const std::vector<Tensor>& parts, size_t axis);
// [begin, begin + length) along axis, copied.
Tensor slice_along(const Tensor& t, size_t axis, int64_t begin, int64_t length);
// t followed by zeros up to `length` along axis (length >= t.dim(axis)).
Tensor pad_along(const Tensor& t, size_t axis, int64_t length);

}  // namespace pyflame_rt
