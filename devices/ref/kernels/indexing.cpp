// Reference kernels: index-based data movement (Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND). Negative indices count from the end; out-of-range indices are
// errors naming the index, its position and the valid range.
#include <algorithm>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

Status resolve_index(const KernelContext& ctx, int64_t raw, int64_t size, int64_t position, int64_t* out) {
  int64_t v = raw < 0 ? raw + size : raw;
  if (v < 0 || v >= size) {
    return ctx.error(StatusCode::kInvalidArgument, "index ", raw, " at position ", position,
                     " is out of range [", -size, ", ", size - 1, "]");
  }
  *out = v;
  return Status::OK();
}

Status gather_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  int64_t len = x.dim(static_cast<size_t>(axis)), outer = outer_size(x.dims(), axis), inner = inner_size(x.dims(), axis);
  Dims out_dims(x.dims().begin(), x.dims().begin() + axis);
  out_dims.insert(out_dims.end(), idx.dims().begin(), idx.dims().end());
  out_dims.insert(out_dims.end(), x.dims().begin() + axis + 1, x.dims().end());
  Tensor y(x.dtype(), out_dims);
  int64_t n_idx = idx.numel();
  for (int64_t j = 0; j < n_idx; ++j) {
    int64_t k = 0;
    RETURN_IF_ERROR(resolve_index(ctx, idx.value_as_int64(j), len, j, &k));
    for (int64_t o = 0; o < outer; ++o) copy_elements(x, (o * len + k) * inner, y, (o * n_idx + j) * inner, inner);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Walks every element of `dims`, calling f(flat, coords).
template <typename F>
Status for_each_coord(const Dims& dims, F f) {
  std::vector<int64_t> c(dims.size(), 0);
  int64_t n = num_elements(dims);
  for (int64_t flat = 0; flat < n; ++flat) {
    RETURN_IF_ERROR(f(flat, c));
    next_index(c, dims);
  }
  return Status::OK();
}

Status gather_elements_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  if (idx.rank() != x.rank()) {
    return ctx.error(StatusCode::kInvalidArgument, "indices rank ", idx.rank(), " must equal data rank ", x.rank());
  }
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  std::vector<int64_t> strides = strides_of(x.dims());
  Tensor y(x.dtype(), idx.dims());
  RETURN_IF_ERROR(for_each_coord(idx.dims(), [&](int64_t flat, const std::vector<int64_t>& c) -> Status {
    int64_t k = 0;
    RETURN_IF_ERROR(resolve_index(ctx, idx.value_as_int64(flat), x.dim(static_cast<size_t>(axis)), flat, &k));
    int64_t src = 0;
    for (size_t d = 0; d < c.size(); ++d) src += (static_cast<int64_t>(d) == axis ? k : c[d]) * strides[d];
    copy_elements(x, src, y, flat, 1);
    return Status::OK();
  }));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Status parse_reduction(const KernelContext& ctx, Reduction* r) {
  std::string s = ctx.node().attr_string("reduction", "none");
  if (s == "none") *r = Reduction::kNone;
  else if (s == "add") *r = Reduction::kAdd;
  else if (s == "mul") *r = Reduction::kMul;
  else if (s == "max") *r = Reduction::kMax;
  else if (s == "min") *r = Reduction::kMin;
  else return ctx.error(StatusCode::kInvalidArgument, "reduction must be none, add, mul, max or min, got '", s, "'");
  return Status::OK();
}

// y[dst] = combine(y[dst], u[src]) according to the reduction.
void scatter_one(Tensor& y, int64_t dst, const Tensor& u, int64_t src, Reduction r) {
  if (r == Reduction::kNone || y.dtype() == DType::kString) { copy_elements(u, src, y, dst, 1); return; }
  dispatch_numeric(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    double a = to_double(y.data<T>()[dst]), b = to_double(u.data<T>()[src]);
    double v = r == Reduction::kAdd ? a + b : r == Reduction::kMul ? a * b : r == Reduction::kMax ? std::max(a, b) : std::min(a, b);
    y.data<T>()[dst] = from_double<T>(v);
  });
}

Status scatter_elements_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  const Tensor& upd = *ctx.input(2);
  if (idx.dims() != upd.dims() || idx.rank() != x.rank()) {
    return ctx.error(StatusCode::kInvalidArgument, "indices ", dims_to_string(idx.dims()), " and updates ",
                     dims_to_string(upd.dims()), " must have the same shape and the rank of data ", dims_to_string(x.dims()));
  }
  Reduction red;
  RETURN_IF_ERROR(parse_reduction(ctx, &red));
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  std::vector<int64_t> strides = strides_of(x.dims());
  Tensor y = x.clone();
  RETURN_IF_ERROR(for_each_coord(idx.dims(), [&](int64_t flat, const std::vector<int64_t>& c) -> Status {
    int64_t k = 0;
    RETURN_IF_ERROR(resolve_index(ctx, idx.value_as_int64(flat), x.dim(static_cast<size_t>(axis)), flat, &k));
    int64_t dst = 0;
    for (size_t d = 0; d < c.size(); ++d) dst += (static_cast<int64_t>(d) == axis ? k : c[d]) * strides[d];
    scatter_one(y, dst, upd, flat, red);
    return Status::OK();
  }));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Offset of the slice addressed by the last dim of indices, for GatherND/ScatterND.
Status nd_offset(const KernelContext& ctx, const Tensor& x, const Tensor& idx, int64_t row, int64_t batch_dims,
                 int64_t batch_offset_elems, int64_t* out) {
  int64_t k = idx.dim(idx.rank() - 1);
  std::vector<int64_t> strides = strides_of(x.dims());
  int64_t off = batch_offset_elems;
  for (int64_t j = 0; j < k; ++j) {
    size_t d = static_cast<size_t>(batch_dims + j);
    int64_t v;
    RETURN_IF_ERROR(resolve_index(ctx, idx.value_as_int64(row * k + j), x.dim(d), row, &v));
    off += v * strides[d];
  }
  *out = off;
  return Status::OK();
}

Status gather_nd_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  int64_t b = ctx.node().attr_int("batch_dims", 0);
  if (idx.rank() < 1) return ctx.error(StatusCode::kInvalidArgument, "indices must have rank >= 1");
  int64_t k = idx.dim(idx.rank() - 1);
  if (b < 0 || b + k > static_cast<int64_t>(x.rank())) {
    return ctx.error(StatusCode::kInvalidArgument, "batch_dims ", b, " + index depth ", k, " exceeds data rank ", x.rank());
  }
  Dims out_dims(idx.dims().begin(), idx.dims().end() - 1);
  int64_t slice = 1;
  for (size_t d = static_cast<size_t>(b + k); d < x.rank(); ++d) { out_dims.push_back(x.dim(d)); slice *= x.dim(d); }
  int64_t batch = 1;
  for (int64_t d = 0; d < b; ++d) batch *= x.dim(static_cast<size_t>(d));
  int64_t rows = idx.numel() / std::max<int64_t>(k, 1);
  if (k == 0) rows = num_elements(Dims(idx.dims().begin(), idx.dims().end() - 1));
  int64_t rows_per_batch = rows / std::max<int64_t>(batch, 1);
  int64_t batch_stride = b > 0 ? strides_of(x.dims())[static_cast<size_t>(b - 1)] : 0;
  Tensor y(x.dtype(), out_dims);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off;
    RETURN_IF_ERROR(nd_offset(ctx, x, idx, r, b, (r / std::max<int64_t>(rows_per_batch, 1)) * batch_stride, &off));
    copy_elements(x, off, y, r * slice, slice);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status scatter_nd_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  const Tensor& upd = *ctx.input(2);
  Reduction red;
  RETURN_IF_ERROR(parse_reduction(ctx, &red));
  int64_t k = idx.dim(idx.rank() - 1);
  if (k > static_cast<int64_t>(x.rank())) {
    return ctx.error(StatusCode::kInvalidArgument, "index depth ", k, " exceeds data rank ", x.rank());
  }
  int64_t slice = 1;
  for (size_t d = static_cast<size_t>(k); d < x.rank(); ++d) slice *= x.dim(d);
  int64_t rows = num_elements(Dims(idx.dims().begin(), idx.dims().end() - 1));
  if (upd.numel() != rows * slice) {
    return ctx.error(StatusCode::kInvalidArgument, "updates has ", upd.numel(), " elements, expected ", rows * slice);
  }
  Tensor y = x.clone();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off;
    RETURN_IF_ERROR(nd_offset(ctx, x, idx, r, 0, 0, &off));
    for (int64_t e = 0; e < slice; ++e) scatter_one(y, off + e, upd, r * slice + e, red);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_indexing_kernels(KernelRegistry& r) {
  r.add("", "Gather", gather_kernel);
  r.add("", "GatherElements", gather_elements_kernel);
  r.add("", "GatherND", gather_nd_kernel);
  r.add("", "Scatter", scatter_elements_kernel);
  r.add("", "ScatterElements", scatter_elements_kernel);
  r.add("", "ScatterND", scatter_nd_kernel);
}

}  // namespace pyflame_rt
