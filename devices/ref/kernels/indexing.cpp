// Reference kernels: index-based data movement (Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND). Negative indices count from the end; out-of-range indices are
// errors naming the index, its position and the valid range. Every shape relation the spec
// states is checked before any element moves, so bad input yields a Status, never a stray read.
#include <algorithm>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

Status check_index_dtype(const KernelContext& ctx, const Tensor& idx) {
  if (idx.dtype() != DType::kInt64 && idx.dtype() != DType::kInt32) {
    return ctx.error(StatusCode::kInvalidArgument, "indices must be int32 or int64, got ", idx.summary());
  }
  return Status::OK();
}

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
  RETURN_IF_ERROR(check_index_dtype(ctx, idx));
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  int64_t len = x.dim(static_cast<size_t>(axis)), outer = outer_size(x.dims(), axis), inner = inner_size(x.dims(), axis);
  // Output: data dims before axis, then the indices' dims, then data dims after axis.
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

// GatherElements/ScatterElements: indices have data's rank and, off the axis, dims no larger
// than data's (they address data[c0, .., idx, .., cn] with the other coordinates taken as-is).
Status check_elements_shapes(const KernelContext& ctx, const Tensor& x, const Tensor& idx, int64_t* axis) {
  RETURN_IF_ERROR(check_index_dtype(ctx, idx));
  if (idx.rank() != x.rank()) {
    return ctx.error(StatusCode::kInvalidArgument, "indices ", dims_to_string(idx.dims()), " must have the rank of data ",
                     dims_to_string(x.dims()), " (", x.rank(), "), got ", idx.rank());
  }
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), axis));
  for (size_t d = 0; d < x.rank(); ++d) {
    if (static_cast<int64_t>(d) != *axis && idx.dim(d) > x.dim(d)) {
      return ctx.error(StatusCode::kInvalidArgument, "indices ", dims_to_string(idx.dims()), " exceed data ",
                       dims_to_string(x.dims()), " on axis ", d, " (", idx.dim(d), " > ", x.dim(d), ")");
    }
  }
  return Status::OK();
}

Status gather_elements_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  int64_t axis = 0;
  RETURN_IF_ERROR(check_elements_shapes(ctx, x, idx, &axis));
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

Status parse_reduction(const KernelContext& ctx, DType dtype, Reduction* r) {
  std::string s = ctx.node().attr_string("reduction", "none");
  if (s == "none") *r = Reduction::kNone;
  else if (s == "add") *r = Reduction::kAdd;
  else if (s == "mul") *r = Reduction::kMul;
  else if (s == "max") *r = Reduction::kMax;
  else if (s == "min") *r = Reduction::kMin;
  else return ctx.error(StatusCode::kInvalidArgument, "reduction must be none, add, mul, max or min, got '", s, "'");
  if (*r != Reduction::kNone && dtype == DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "reduction '", s, "' needs numeric data, got string");
  }
  return Status::OK();
}

// y[dst] = combine(y[dst], u[src]) according to the reduction. Integers combine in their own
// type so large int64 values keep every bit; floats combine in double and round once.
void scatter_one(Tensor& y, int64_t dst, const Tensor& u, int64_t src, Reduction r) {
  if (r == Reduction::kNone) { copy_elements(u, src, y, dst, 1); return; }
  dispatch_numeric(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T& out = y.data<T>()[dst];
    const T in = u.data<T>()[src];
    if constexpr (std::is_same_v<T, bool>) {
      // add/max act as or, mul/min as and (bool arithmetic saturates to {0, 1}).
      out = (r == Reduction::kAdd || r == Reduction::kMax) ? (out || in) : (out && in);
    } else if constexpr (std::is_integral_v<T>) {
      // add and mul wrap (kernel_util.h wrapping_*): int64 3 * -6.9e18 was signed overflow
      // (UBSan, kernel_run stop 18 run 8).
      out = r == Reduction::kAdd ? wrapping_add(out, in) : r == Reduction::kMul ? wrapping_mul(out, in)
            : r == Reduction::kMax ? std::max(out, in) : std::min(out, in);
    } else {
      double a = to_double(out), b = to_double(in);
      double v = r == Reduction::kAdd ? a + b : r == Reduction::kMul ? a * b : r == Reduction::kMax ? std::max(a, b) : std::min(a, b);
      out = from_double<T>(v);
    }
  });
}

Status check_updates_dtype(const KernelContext& ctx, const Tensor& x, const Tensor& upd) {
  if (upd.dtype() != x.dtype()) {
    return ctx.error(StatusCode::kInvalidArgument, "updates dtype ", dtype_name(upd.dtype()), " must match data dtype ",
                     dtype_name(x.dtype()));
  }
  return Status::OK();
}

Status scatter_elements_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  const Tensor& upd = *ctx.input(2);
  RETURN_IF_ERROR(check_updates_dtype(ctx, x, upd));
  if (idx.dims() != upd.dims()) {
    return ctx.error(StatusCode::kInvalidArgument, "indices ", dims_to_string(idx.dims()), " and updates ",
                     dims_to_string(upd.dims()), " must have the same shape");
  }
  int64_t axis = 0;
  RETURN_IF_ERROR(check_elements_shapes(ctx, x, idx, &axis));
  Reduction red;
  RETURN_IF_ERROR(parse_reduction(ctx, x.dtype(), &red));
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

// Element offset in x of the slice addressed by index tuple `row` (the last dim of `idx` holds
// tuples of depth k over x's dims [first_dim, first_dim + k)), plus `base`.
Status nd_offset(const KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& x_strides, const Tensor& idx,
                 int64_t row, int64_t k, int64_t first_dim, int64_t base, int64_t* out) {
  int64_t off = base;
  for (int64_t j = 0; j < k; ++j) {
    size_t d = static_cast<size_t>(first_dim + j);
    int64_t v = 0;
    RETURN_IF_ERROR(resolve_index(ctx, idx.value_as_int64(row * k + j), x.dim(d), row * k + j, &v));
    off += v * x_strides[d];
  }
  *out = off;
  return Status::OK();
}

Status gather_nd_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& idx = *ctx.input(1);
  RETURN_IF_ERROR(check_index_dtype(ctx, idx));
  int64_t b = ctx.node().attr_int("batch_dims", 0);
  int64_t x_rank = static_cast<int64_t>(x.rank()), i_rank = static_cast<int64_t>(idx.rank());
  if (i_rank < 1) return ctx.error(StatusCode::kInvalidArgument, "indices must have rank >= 1, got a scalar");
  if (b < 0 || b >= std::min(x_rank, i_rank)) {
    return ctx.error(StatusCode::kInvalidArgument, "batch_dims ", b, " must be in [0, min(data rank ", x_rank,
                     ", indices rank ", i_rank, "))");
  }
  for (int64_t d = 0; d < b; ++d) {
    if (idx.dim(static_cast<size_t>(d)) != x.dim(static_cast<size_t>(d))) {
      return ctx.error(StatusCode::kInvalidArgument, "batch dim ", d, " differs: data ", dims_to_string(x.dims()),
                       ", indices ", dims_to_string(idx.dims()));
    }
  }
  int64_t k = idx.dim(idx.rank() - 1);
  if (b + k > x_rank) {
    return ctx.error(StatusCode::kInvalidArgument, "batch_dims ", b, " + index depth ", k, " exceeds data rank ",
                     x_rank, " (data ", dims_to_string(x.dims()), ", indices ", dims_to_string(idx.dims()), ")");
  }
  // Output: indices dims without the last, then the data dims the tuples do not address.
  Dims out_dims(idx.dims().begin(), idx.dims().end() - 1);
  int64_t slice = 1;
  for (size_t d = static_cast<size_t>(b + k); d < x.rank(); ++d) { out_dims.push_back(x.dim(d)); slice *= x.dim(d); }
  int64_t batches = outer_size(x.dims(), b);
  int64_t rows = num_elements(Dims(idx.dims().begin(), idx.dims().end() - 1));
  int64_t rows_per_batch = batches > 0 ? rows / batches : 0;
  // Elements of data per batch entry: the product of dims from b on.
  int64_t batch_elems = 1;
  for (size_t d = static_cast<size_t>(b); d < x.rank(); ++d) batch_elems *= x.dim(d);
  std::vector<int64_t> strides = strides_of(x.dims());
  Tensor y(x.dtype(), out_dims);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    int64_t base = rows_per_batch > 0 ? (r / rows_per_batch) * batch_elems : 0;
    RETURN_IF_ERROR(nd_offset(ctx, x, strides, idx, r, k, b, base, &off));
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
  RETURN_IF_ERROR(check_index_dtype(ctx, idx));
  RETURN_IF_ERROR(check_updates_dtype(ctx, x, upd));
  Reduction red;
  RETURN_IF_ERROR(parse_reduction(ctx, x.dtype(), &red));
  if (idx.rank() < 1) return ctx.error(StatusCode::kInvalidArgument, "indices must have rank >= 1, got a scalar");
  int64_t k = idx.dim(idx.rank() - 1);
  if (k > static_cast<int64_t>(x.rank())) {
    return ctx.error(StatusCode::kInvalidArgument, "index depth ", k, " exceeds data rank ", x.rank(), " (data ",
                     dims_to_string(x.dims()), ", indices ", dims_to_string(idx.dims()), ")");
  }
  // updates must be indices.shape[:-1] + data.shape[k:].
  Dims want(idx.dims().begin(), idx.dims().end() - 1);
  want.insert(want.end(), x.dims().begin() + k, x.dims().end());
  if (upd.dims() != want) {
    return ctx.error(StatusCode::kInvalidArgument, "updates shape ", dims_to_string(upd.dims()), " must be ",
                     dims_to_string(want), " (indices ", dims_to_string(idx.dims()), ", data ", dims_to_string(x.dims()), ")");
  }
  int64_t slice = 1;  // elements per addressed slice: product of data dims from k on
  for (size_t d = static_cast<size_t>(k); d < x.rank(); ++d) slice *= x.dim(d);
  int64_t rows = num_elements(Dims(idx.dims().begin(), idx.dims().end() - 1));
  std::vector<int64_t> strides = strides_of(x.dims());
  Tensor y = x.clone();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    RETURN_IF_ERROR(nd_offset(ctx, x, strides, idx, r, k, 0, 0, &off));
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
  r.add("", "Scatter", scatter_elements_kernel);  // opset 9-10 name of ScatterElements
  r.add("", "ScatterElements", scatter_elements_kernel);
  r.add("", "ScatterND", scatter_nd_kernel);
}

}  // namespace pyflame_rt
