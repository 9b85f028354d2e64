// Reference kernels: shape and layout ops (Constant, Reshape, Shape, Transpose, Concat, Split,
// Slice, Pad, Expand, Tile, ...). Pure data movement works for every dtype, strings included;
// Reshape-like ops return views that share the input's buffer.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "graph/checked_math.h"

namespace pyflame_rt {

namespace {

Status constant_kernel(KernelContext& ctx) {
  const Node& n = ctx.node();
  if (const Tensor* t = n.attr_tensor("value")) { ctx.set_output(0, *t); return Status::OK(); }
  if (const Attribute* a = n.attr("value_float")) { ctx.set_output(0, Tensor::scalar<float>(a->f)); return Status::OK(); }
  if (const Attribute* a = n.attr("value_int")) { ctx.set_output(0, Tensor::scalar<int64_t>(a->i)); return Status::OK(); }
  if (const Attribute* a = n.attr("value_floats")) {
    ctx.set_output(0, Tensor::from_vector<float>({static_cast<int64_t>(a->floats.size())}, a->floats));
    return Status::OK();
  }
  if (const Attribute* a = n.attr("value_ints")) {
    ctx.set_output(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(a->ints.size())}, a->ints));
    return Status::OK();
  }
  if (const Attribute* a = n.attr("value_string")) {
    Tensor t(DType::kString, {});
    t.data<std::string>()[0] = a->s;
    ctx.set_output(0, std::move(t));
    return Status::OK();
  }
  if (const Attribute* a = n.attr("value_strings")) {
    Tensor t(DType::kString, {static_cast<int64_t>(a->strings.size())});
    std::copy(a->strings.begin(), a->strings.end(), t.data<std::string>());
    ctx.set_output(0, std::move(t));
    return Status::OK();
  }
  if (n.has_attr("sparse_value")) {
    return ctx.error(StatusCode::kNotImplemented, "sparse_value is not supported (sparse tensors)");
  }
  return ctx.error(StatusCode::kInvalidArgument,
                   "needs one of the attributes value, value_float(s), value_int(s), value_string(s); got none");
}

// Axes from the attribute (older opsets) or from input `input_index` (newer opsets).
std::vector<int64_t> axes_from(const KernelContext& ctx, size_t input_index) {
  if (const Tensor* t = ctx.input(input_index)) return t->to_int64_vector();
  return ctx.node().attr_ints("axes");
}

Status reshape_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  std::vector<int64_t> shape;
  if (ctx.opset() < 5) shape = ctx.node().attr_ints("shape");
  else { RETURN_IF_ERROR(ctx.require_input(1)); shape = ctx.input(1)->to_int64_vector(); }
  Dims out;
  std::string why;
  if (!reshape_dims(x.dims(), shape, ctx.node().attr_int("allowzero", 0) != 0, &out, &why)) {
    return ctx.error(StatusCode::kInvalidArgument, why);
  }
  ctx.set_output(0, x.reshaped(out));
  return Status::OK();
}

Status shape_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t rank = static_cast<int64_t>(x.rank());
  auto clamp = [&](int64_t v) { if (v < 0) v += rank; return std::min(std::max<int64_t>(v, 0), rank); };
  int64_t start = clamp(ctx.node().attr_int("start", 0));
  int64_t end = ctx.node().has_attr("end") ? clamp(ctx.node().attr_int("end", rank)) : rank;
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) dims.push_back(x.dim(static_cast<size_t>(i)));
  ctx.set_output(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(dims.size())}, dims));
  return Status::OK();
}

Status size_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  ctx.set_output(0, Tensor::scalar<int64_t>(ctx.input(0)->numel()));
  return Status::OK();
}

Status flatten_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = ctx.node().attr_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank) {
    return ctx.error(StatusCode::kInvalidArgument, "axis ", ctx.node().attr_int("axis", 1),
                     " is out of range for rank ", rank);
  }
  // Products computed separately (not numel/outer) so a zero-sized dim keeps the other extent.
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= x.dim(static_cast<size_t>(i));
  ctx.set_output(0, x.reshaped({outer, inner}));
  return Status::OK();
}

// Squeeze and Unsqueeze share their rules with the CPU device's native views (kernel_util).
Status squeeze_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  Dims out;
  std::string why;
  if (!squeeze_dims(x.dims(), axes_from(ctx, 1), &out, &why)) return ctx.error(StatusCode::kInvalidArgument, why);
  ctx.set_output(0, x.reshaped(out));
  return Status::OK();
}

Status unsqueeze_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  Dims out;
  std::string why;
  if (!unsqueeze_dims(x.dims(), axes_from(ctx, 1), &out, &why)) return ctx.error(StatusCode::kInvalidArgument, why);
  ctx.set_output(0, x.reshaped(out));
  return Status::OK();
}

Tensor transpose(const Tensor& x, const std::vector<int64_t>& perm) {
  Dims out_dims(x.rank());
  for (size_t i = 0; i < perm.size(); ++i) out_dims[i] = x.dim(static_cast<size_t>(perm[i]));
  Tensor y(x.dtype(), out_dims);
  std::vector<int64_t> in_strides = strides_of(x.dims());
  std::vector<int64_t> idx(x.rank(), 0);
  size_t rank = x.rank();
  for (int64_t f = 0; f < y.numel(); ++f) {
    int64_t src = 0;
    for (size_t d = 0; d < rank; ++d) src += idx[d] * in_strides[static_cast<size_t>(perm[d])];
    copy_elements(x, src, y, f, 1);
    next_index(idx, out_dims);
  }
  return y;
}

Status transpose_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  std::vector<int64_t> perm = ctx.node().attr_ints("perm");
  if (perm.empty()) for (int64_t i = static_cast<int64_t>(x.rank()) - 1; i >= 0; --i) perm.push_back(i);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted.size() != x.rank() || sorted[i] != static_cast<int64_t>(i)) {
      return ctx.error(StatusCode::kInvalidArgument, "perm ", dims_to_string(perm),
                       " is not a permutation of the ", x.rank(), " axes of ", dims_to_string(x.dims()));
    }
  }
  ctx.set_output(0, transpose(x, perm));
  return Status::OK();
}

Status concat_kernel(KernelContext& ctx) {
  std::vector<Tensor> parts;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    RETURN_IF_ERROR(ctx.require_input(i));
    parts.push_back(*ctx.input(i));
  }
  if (parts.empty()) return ctx.error(StatusCode::kInvalidArgument, "needs at least one input");
  const Tensor& first = parts.front();
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(first.rank()), &axis));
  for (size_t i = 1; i < parts.size(); ++i) {
    const Tensor& t = parts[i];
    bool ok = t.rank() == first.rank() && t.dtype() == first.dtype();
    for (size_t d = 0; ok && d < t.rank(); ++d) ok = static_cast<int64_t>(d) == axis || t.dim(d) == first.dim(d);
    if (!ok) {
      return ctx.error(StatusCode::kInvalidArgument, "input ", i, " is ", t.summary(), ", input 0 is ",
                       first.summary(), "; all dims but axis ", axis, " and the dtype must match");
    }
  }
  ctx.set_output(0, concat_along(parts, axis));
  return Status::OK();
}

Status split_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  int64_t len = x.dim(static_cast<size_t>(axis));
  // `split` is an input in opset 1 and 13+, an attribute in 2-12 (opset 1 accepted either).
  std::vector<int64_t> sizes = ctx.input(1) ? ctx.input(1)->to_int64_vector() : ctx.node().attr_ints("split");
  int64_t n_out = static_cast<int64_t>(ctx.num_outputs());
  if (n_out < 1) return ctx.error(StatusCode::kInvalidArgument, "needs at least one output");
  if (sizes.empty()) {
    // Equal parts; a length that does not divide leaves a smaller last chunk (opset 18 rule,
    // which older opsets leave undefined).
    int64_t parts = ctx.node().attr_int("num_outputs", n_out);
    if (parts != n_out) {
      return ctx.error(StatusCode::kInvalidArgument, "num_outputs is ", parts, " but the node has ", n_out,
                       " outputs");
    }
    int64_t chunk = len / parts + (len % parts != 0);  // len + parts - 1 may pass int64 (an empty x)
    for (int64_t s = 0; s < len;) {  // s + chunk may pass int64 when len is near it
      sizes.push_back(std::min(chunk, len - s));
      s += sizes.back();
    }
    while (static_cast<int64_t>(sizes.size()) < n_out) sizes.push_back(0);
  }
  for (int64_t v : sizes) {
    if (v < 0) return ctx.error(StatusCode::kInvalidArgument, "split ", dims_to_string(sizes), " has a negative size");
  }
  // Non-negative but the model's: the sum is checked (three near INT64_MAX overflowed; UBSan).
  int64_t total = 0;
  if (!checked_sum(sizes, &total) || total != len || static_cast<int64_t>(sizes.size()) != n_out) {
    return ctx.error(StatusCode::kInvalidArgument, "split ", dims_to_string(sizes), " does not divide axis ",
                     axis, " of length ", len, " into ", n_out, " outputs");
  }
  int64_t start = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    ctx.set_output(i, slice_along(x, axis, start, sizes[i]));
    start += sizes[i];
  }
  return Status::OK();
}

Status slice_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t rank = static_cast<int64_t>(x.rank());
  std::vector<int64_t> starts, ends, axes, steps;
  if (ctx.opset() < 10) {
    starts = ctx.node().attr_ints("starts");
    ends = ctx.node().attr_ints("ends");
    axes = ctx.node().attr_ints("axes");
  } else {
    RETURN_IF_ERROR(ctx.require_inputs(3));
    starts = ctx.input(1)->to_int64_vector();
    ends = ctx.input(2)->to_int64_vector();
    if (ctx.input(3)) axes = ctx.input(3)->to_int64_vector();
    if (ctx.input(4)) steps = ctx.input(4)->to_int64_vector();
  }
  if (axes.empty()) for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    return ctx.error(StatusCode::kInvalidArgument, "starts, ends, axes and steps must have equal lengths, got ",
                     starts.size(), ", ", ends.size(), ", ", axes.size(), ", ", steps.size());
  }
  std::vector<int64_t> begin(x.rank(), 0), step(x.rank(), 1);
  std::vector<bool> seen(x.rank(), false);
  Dims out_dims = x.dims();
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t ax = 0;
    RETURN_IF_ERROR(normalize_axis(ctx, axes[i], rank, &ax));
    if (seen[static_cast<size_t>(ax)]) {
      return ctx.error(StatusCode::kInvalidArgument, "axes ", dims_to_string(axes), " name axis ", ax, " twice");
    }
    seen[static_cast<size_t>(ax)] = true;
    int64_t dim = x.dim(static_cast<size_t>(ax));
    int64_t st = steps[i];
    if (st == 0) return ctx.error(StatusCode::kInvalidArgument, "step for axis ", axes[i], " is 0");
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += dim;  // INT64_MIN + dim cannot overflow since dim >= 0
    if (e < 0) e += dim;
    // Clamp to the valid range of each direction (ONNX): starts to [0, dim] forwards and
    // [0, dim-1] backwards, ends to [0, dim] forwards and [-1, dim-1] backwards. A start before
    // the axis going backwards is its first element, as in ONNX Runtime (not numpy's empty
    // slice); the reference clamped it to -1 (kernel_run stop 16: the CPU device was right).
    int64_t count = 0;
    if (st > 0) {
      s = std::min(std::max<int64_t>(s, 0), dim);
      e = std::min(std::max<int64_t>(e, 0), dim);
      if (e > s) count = (e - s - 1) / st + 1;  // ceil without overflow for huge steps
    } else {
      s = std::min(std::max<int64_t>(s, 0), dim - 1);
      e = std::min(std::max<int64_t>(e, -1), dim - 1);
      // |step| as unsigned so st == INT64_MIN does not overflow.
      uint64_t mag = static_cast<uint64_t>(-(st + 1)) + 1;
      if (s > e) count = static_cast<int64_t>(static_cast<uint64_t>(s - e - 1) / mag) + 1;
      if (s < 0) s = 0;  // only reachable with count == 0
    }
    begin[static_cast<size_t>(ax)] = s;
    step[static_cast<size_t>(ax)] = st;
    out_dims[static_cast<size_t>(ax)] = count;
  }
  Tensor y(x.dtype(), out_dims);
  std::vector<int64_t> in_strides = strides_of(x.dims());
  std::vector<int64_t> idx(x.rank(), 0);
  for (int64_t f = 0; f < y.numel(); ++f) {
    int64_t src = 0;
    for (size_t d = 0; d < x.rank(); ++d) src += (begin[d] + idx[d] * step[d]) * in_strides[d];
    copy_elements(x, src, y, f, 1);
    next_index(idx, out_dims);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Maps each output element to an input element through a per-dim coordinate function; a
// negative coordinate leaves the output element as it was in `init` (padding).
template <typename F>
Tensor gather_by_dims(const Tensor& x, Tensor init, F src_coord) {
  Tensor y = std::move(init);
  const Dims out_dims = y.dims();
  std::vector<int64_t> in_strides = strides_of(x.dims());
  std::vector<int64_t> idx(out_dims.size(), 0);
  for (int64_t f = 0; f < y.numel(); ++f) {
    int64_t src = 0;
    bool inside = true;
    for (size_t d = 0; d < out_dims.size(); ++d) {
      int64_t c = src_coord(d, idx[d]);
      if (c < 0) { inside = false; break; }
      src += c * in_strides[d];
    }
    if (inside) copy_elements(x, src, y, f, 1);
    next_index(idx, out_dims);
  }
  return y;
}

// A shape read from a 1-D int64 input (Expand, ConstantOfShape): rejects other ranks/negatives.
Status read_shape_input(const KernelContext& ctx, size_t i, Dims* out) {
  const Tensor& t = *ctx.input(i);
  if (t.rank() != 1) {
    return ctx.error(StatusCode::kInvalidArgument, "shape input ", i, " must be 1-D, got ", t.summary());
  }
  if (t.dtype() != DType::kInt64 && t.dtype() != DType::kInt32) {
    return ctx.error(StatusCode::kInvalidArgument, "shape input ", i, " must be int64, got ", t.summary());
  }
  *out = t.to_int64_vector();
  for (int64_t d : *out) {
    if (d < 0) return ctx.error(StatusCode::kInvalidArgument, "shape ", dims_to_string(*out), " has a negative dim ", d);
  }
  return Status::OK();
}

Status expand_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  Dims target;
  RETURN_IF_ERROR(read_shape_input(ctx, 1, &target));
  Dims out_dims;
  RETURN_IF_ERROR(broadcast_dims(ctx, x.dims(), target, &out_dims));
  BroadcastIndexMap map = broadcast_index_map(x.dims(), out_dims);
  Tensor y(x.dtype(), out_dims);
  for (int64_t i = 0; i < y.numel(); ++i) copy_elements(x, map[static_cast<size_t>(i)], y, i, 1);
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status tile_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  std::vector<int64_t> reps;
  if (ctx.opset() < 6) {
    // Tile-1: a scalar `tiles` count applied to the single axis given by input 2.
    RETURN_IF_ERROR(ctx.require_input(2));
    int64_t axis = 0;
    RETURN_IF_ERROR(normalize_axis(ctx, ctx.input(2)->value_as_int64(0), static_cast<int64_t>(x.rank()), &axis));
    reps.assign(x.rank(), 1);
    reps[static_cast<size_t>(axis)] = ctx.input(1)->value_as_int64(0);
  } else {
    reps = ctx.input(1)->to_int64_vector();
  }
  if (reps.size() != x.rank()) {
    return ctx.error(StatusCode::kInvalidArgument, "repeats has ", reps.size(), " entries, expected one per axis of ",
                     dims_to_string(x.dims()), " (", x.rank(), ")");
  }
  Dims out_dims = x.dims();
  for (size_t i = 0; i < reps.size(); ++i) {
    if (reps[i] < 0) return ctx.error(StatusCode::kInvalidArgument, "repeats must be >= 0, got ", reps[i], " for axis ", i);
    CheckedInt64 dim = CheckedInt64(out_dims[i]) * reps[i];  // both the model's (4 x 2^62; UBSan)
    if (dim.overflowed()) {
      return ctx.error(StatusCode::kInvalidArgument, "axis ", i, " of ", dims_to_string(x.dims()), " repeated ", reps[i],
                       " times passes int64");
    }
    out_dims[i] = dim.value();
  }
  ctx.set_output(0, gather_by_dims(x, Tensor(x.dtype(), out_dims), [&](size_t d, int64_t i) { return i % x.dim(d); }));
  return Status::OK();
}

// Source coordinate of output coordinate c (relative to the unpadded start) for reflect/edge;
// reflect mirrors without repeating the border element, as numpy.pad does.
int64_t pad_source(const std::string& mode, int64_t c, int64_t n) {
  if (c >= 0 && c < n) return c;
  if (mode == "edge") return c < 0 ? 0 : n - 1;
  if (n == 1) return 0;
  int64_t period = 2 * (n - 1);
  int64_t m = (c < 0 ? -c : c) % period;
  return m < n ? m : period - m;
}

Status pad_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t rank = static_cast<int64_t>(x.rank());
  std::string mode = ctx.node().attr_string("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge") {
    return ctx.error(StatusCode::kInvalidArgument, "mode must be constant, reflect or edge, got '", mode, "'");
  }
  // The fill element, as a one-element tensor of x's dtype (zero / empty string by default).
  Tensor fill(x.dtype(), {1});
  std::vector<int64_t> pads;
  if (ctx.opset() < 11) {
    // Pad-1 calls the attribute `paddings`, Pad-2 `pads`; the fill is a float attribute.
    pads = ctx.node().attr_ints(ctx.node().has_attr("pads") ? "pads" : "paddings");
    double v = ctx.node().attr_float("value", 0.0f);
    dispatch_numeric(x.dtype(), [&](auto tag) { fill.data<typename decltype(tag)::type>()[0] = from_double<typename decltype(tag)::type>(v); });
  } else {
    RETURN_IF_ERROR(ctx.require_input(1));
    pads = ctx.input(1)->to_int64_vector();
    if (const Tensor* cv = ctx.input(2); cv && cv->numel() > 0 && mode == "constant") {
      if (cv->dtype() != x.dtype()) {
        return ctx.error(StatusCode::kInvalidArgument, "constant_value is ", cv->summary(), ", data is ", x.summary(),
                         "; their dtypes must match");
      }
      copy_elements(*cv, 0, fill, 0, 1);
    }
  }
  std::vector<int64_t> axes;
  if (const Tensor* a_in = ctx.input(3)) {  // opset 18
    std::vector<bool> seen(x.rank(), false);
    for (int64_t a : a_in->to_int64_vector()) {
      int64_t ax = 0;
      RETURN_IF_ERROR(normalize_axis(ctx, a, rank, &ax));
      if (seen[static_cast<size_t>(ax)]) return ctx.error(StatusCode::kInvalidArgument, "axes name axis ", ax, " twice");
      seen[static_cast<size_t>(ax)] = true;
      axes.push_back(ax);
    }
  } else {
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  }
  if (pads.size() != 2 * axes.size()) {
    return ctx.error(StatusCode::kInvalidArgument, "pads has ", pads.size(), " entries, expected ", 2 * axes.size(),
                     " (begin and end for each of ", axes.size(), " axes of ", dims_to_string(x.dims()), ")");
  }
  std::vector<int64_t> before(x.rank(), 0), after(x.rank(), 0);
  for (size_t i = 0; i < axes.size(); ++i) {
    before[static_cast<size_t>(axes[i])] = pads[i];
    after[static_cast<size_t>(axes[i])] = pads[i + axes.size()];
  }
  Dims out_dims = x.dims();
  for (size_t d = 0; d < x.rank(); ++d) {
    const CheckedInt64 size = CheckedInt64(out_dims[d]) + before[d] + after[d];  // negative pads crop
    if (size.overflowed()) {
      return ctx.error(StatusCode::kInvalidArgument, "pads ", dims_to_string(pads), " make axis ", d, " of ",
                       dims_to_string(x.dims()), " pass int64");
    }
    out_dims[d] = size.value();
    if (out_dims[d] < 0) {
      return ctx.error(StatusCode::kInvalidArgument, "pads ", dims_to_string(pads), " make axis ", d, " of ",
                       dims_to_string(x.dims()), " negative (", out_dims[d], ")");
    }
    if (mode != "constant" && x.dim(d) == 0 && out_dims[d] > 0) {
      return ctx.error(StatusCode::kInvalidArgument, mode, " padding needs a non-empty axis ", d, ", got ",
                       dims_to_string(x.dims()));
    }
  }
  Tensor init(x.dtype(), out_dims);
  if (mode == "constant") for (int64_t i = 0; i < init.numel(); ++i) copy_elements(fill, 0, init, i, 1);
  ctx.set_output(0, gather_by_dims(x, std::move(init), [&](size_t d, int64_t i) -> int64_t {
    int64_t c = i - before[d], n = x.dim(d);
    if (mode == "constant") return c >= 0 && c < n ? c : -1;
    return pad_source(mode, c, n);
  }));
  return Status::OK();
}

Status constant_of_shape_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  Dims dims;
  RETURN_IF_ERROR(read_shape_input(ctx, 0, &dims));
  const Tensor* value = ctx.node().attr_tensor("value");
  if (value && value->numel() != 1) {
    return ctx.error(StatusCode::kInvalidArgument, "value must hold exactly one element, got ", value->summary());
  }
  Tensor y(value ? value->dtype() : DType::kFloat32, dims);
  if (value) for (int64_t i = 0; i < y.numel(); ++i) copy_elements(*value, 0, y, i, 1);
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status range_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& start = *ctx.input(0);
  for (size_t i = 0; i < 3; ++i) {
    const Tensor& t = *ctx.input(i);
    if (t.numel() != 1 || t.dtype() != start.dtype()) {
      return ctx.error(StatusCode::kInvalidArgument, "start, limit and delta must be scalars of one dtype; input ", i,
                       " is ", t.summary(), ", start is ", start.summary());
    }
  }
  if (start.dtype() == DType::kString || start.dtype() == DType::kBool) {
    return ctx.error(StatusCode::kInvalidArgument, "Range needs a numeric dtype, got ", dtype_name(start.dtype()));
  }
  double s = start.value_as_double(0), l = ctx.input(1)->value_as_double(0), d = ctx.input(2)->value_as_double(0);
  if (d == 0) return ctx.error(StatusCode::kInvalidArgument, "delta must not be 0");
  double count = std::ceil((l - s) / d);
  if (!std::isfinite(count)) {
    return ctx.error(StatusCode::kInvalidArgument, "start ", s, ", limit ", l, ", delta ", d, " give no finite length");
  }
  if (count > static_cast<double>(int64_t{1} << 40)) {
    return ctx.error(StatusCode::kInvalidArgument, "start ", s, ", limit ", l, ", delta ", d, " give ", count,
                     " elements, too many to allocate");
  }
  // count is finite and at most 2^40 here, but may be any negative number (-1e30): no elements.
  int64_t n = count <= 0 ? 0 : static_cast<int64_t>(count);
  Tensor y(start.dtype(), {n});
  dispatch_numeric(start.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T>) {
      int64_t si = start.value_as_int64(0), di = ctx.input(2)->value_as_int64(0);
      // Wraps like the element type (the count comes from doubles and may be one past exact).
      for (int64_t i = 0; i < n; ++i) y.data<T>()[i] = static_cast<T>(wrapping_add(si, wrapping_mul(i, di)));
    } else {
      // start + i * delta, as the spec (and numpy.arange) define it: no accumulated rounding.
      for (int64_t i = 0; i < n; ++i) y.data<T>()[i] = from_double<T>(s + static_cast<double>(i) * d);
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status trilu_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.rank() < 2) return ctx.error(StatusCode::kInvalidArgument, "input must have rank >= 2, got ", x.rank());
  if (ctx.input(1) && ctx.input(1)->numel() != 1) {
    return ctx.error(StatusCode::kInvalidArgument, "k must be a scalar, got ", ctx.input(1)->summary());
  }
  int64_t k = ctx.input(1) ? ctx.input(1)->value_as_int64(0) : 0;
  bool upper = ctx.node().attr_int("upper", 1) != 0;
  int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  Tensor y = x.clone();
  Tensor zero(x.dtype(), {1});
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t c = i % cols, r = (i / cols) % rows;
    bool keep = upper ? c - r >= k : c - r <= k;
    if (!keep) copy_elements(zero, 0, y, i, 1);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status depth_space(KernelContext& ctx, bool to_space) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.rank() != 4) return ctx.error(StatusCode::kInvalidArgument, "input must be 4-D NCHW, got ", dims_to_string(x.dims()));
  int64_t b = ctx.node().attr_int("blocksize", 0);
  if (b <= 0) return ctx.error(StatusCode::kInvalidArgument, "blocksize must be positive, got ", b);
  int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  bool crd = ctx.node().attr_string("mode", "DCR") == "CRD";
  // blocksize is a model's value: its square and the output dims it multiplies must fit int64
  // (2^62 squared overflowed to 0, then divided by: SIGFPE; kernel_run).
  int64_t bb = 0, h_out = 0, w_out = 0, c_out = 0;
  if (__builtin_mul_overflow(b, b, &bb) ||
      (to_space ? __builtin_mul_overflow(h, b, &h_out) || __builtin_mul_overflow(w, b, &w_out)
                : __builtin_mul_overflow(c, bb, &c_out))) {
    return ctx.error(StatusCode::kInvalidArgument, "blocksize ", b, " is too large for input ", dims_to_string(x.dims()));
  }
  if (to_space) {
    if (c % bb) return ctx.error(StatusCode::kInvalidArgument, "channels ", c, " not divisible by blocksize^2 ", bb);
    int64_t oc = c / bb;
    Tensor t = crd ? x.reshaped({n, oc, b, b, h, w}) : x.reshaped({n, b, b, oc, h, w});
    Tensor p = crd ? transpose(t, {0, 1, 4, 2, 5, 3}) : transpose(t, {0, 3, 4, 1, 5, 2});
    ctx.set_output(0, p.reshaped({n, oc, h_out, w_out}));
  } else {
    if (h % b || w % b) return ctx.error(StatusCode::kInvalidArgument, "H and W (", h, ", ", w, ") must be divisible by blocksize ", b);
    Tensor t = x.reshaped({n, c, h / b, b, w / b, b});
    ctx.set_output(0, transpose(t, {0, 3, 5, 1, 2, 4}).reshaped({n, c_out, h / b, w / b}));
  }
  return Status::OK();
}
Status depth_to_space_kernel(KernelContext& ctx) { return depth_space(ctx, true); }
Status space_to_depth_kernel(KernelContext& ctx) { return depth_space(ctx, false); }

Status eye_like_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.rank() != 2) return ctx.error(StatusCode::kInvalidArgument, "input must be 2-D, got ", dims_to_string(x.dims()));
  DType dt = x.dtype();
  if (ctx.node().has_attr("dtype")) {
    auto d = dtype_from_onnx(static_cast<int>(ctx.node().attr_int("dtype", 1)));
    if (!d.ok()) return d.status();
    dt = *d;
  }
  if (dt == DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "output dtype must be numeric or bool, got string");
  }
  int64_t k = ctx.node().attr_int("k", 0);
  Tensor y(dt, x.dims());
  // A diagonal outside the matrix leaves it zero; only one inside is walked, so r + k cannot
  // overflow (k = 2^63 - 1 did: UBSan, kernel_run).
  if (k <= -x.dim(0) || k >= x.dim(1)) {
    ctx.set_output(0, std::move(y));
    return Status::OK();
  }
  dispatch_numeric(dt, [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t r = 0; r < x.dim(0); ++r) {
      int64_t c = r + k;
      if (c >= 0 && c < x.dim(1)) y.data<T>()[r * x.dim(1) + c] = from_double<T>(1.0);
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status one_hot_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& idx = *ctx.input(0);
  if (ctx.input(1)->numel() != 1 || ctx.input(1)->dtype() == DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "depth must be a numeric scalar, got ", ctx.input(1)->summary());
  }
  if (idx.dtype() == DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "indices must be numeric, got ", idx.summary());
  }
  // depth may be a float the model chooses (NaN, 1e30): read saturating, NaN is 0 (refused).
  int64_t depth = int64_from_double(ctx.input(1)->value_as_double(0));
  const Tensor& values = *ctx.input(2);
  if (values.numel() != 2) return ctx.error(StatusCode::kInvalidArgument, "values must have 2 elements, got ", values.numel());
  if (depth <= 0) return ctx.error(StatusCode::kInvalidArgument, "depth must be positive, got ", depth);
  int64_t out_rank = static_cast<int64_t>(idx.rank()) + 1;
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", -1), out_rank, &axis));
  Dims out_dims = idx.dims();
  out_dims.insert(out_dims.begin() + axis, depth);
  Tensor y(values.dtype(), out_dims);
  // An empty output with a huge depth would still walk depth x outer empty rows.
  if (y.numel() == 0) {
    ctx.set_output(0, std::move(y));
    return Status::OK();
  }
  int64_t outer = outer_size(out_dims, axis), inner = inner_size(out_dims, axis);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t k = 0; k < depth; ++k) {
      for (int64_t i = 0; i < inner; ++i) {
        // A float index may be 1e30 (saturates, matches no class) or NaN (matches none either,
        // as ONNX Runtime's conversion to INT64_MIN on x86 does).
        const double dv = idx.value_as_double(o * inner + i);
        int64_t v = std::isnan(dv) ? depth : int64_from_double(dv);
        if (v < 0) v += depth;
        copy_elements(values, v == k ? 1 : 0, y, (o * depth + k) * inner + i, 1);
      }
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status non_zero_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  std::vector<int64_t> hits;
  for (int64_t i = 0; i < x.numel(); ++i) {
    // Strings count as non-zero when non-empty, as numpy's truthiness has it.
    bool nz = x.dtype() == DType::kString ? !x.data<std::string>()[i].empty() : x.value_as_double(i) != 0;
    if (nz) hits.push_back(i);
  }
  int64_t rank = static_cast<int64_t>(x.rank());
  Tensor y(DType::kInt64, {rank, static_cast<int64_t>(hits.size())});
  std::vector<int64_t> strides = strides_of(x.dims());
  for (size_t h = 0; h < hits.size(); ++h) {
    for (int64_t d = 0; d < rank; ++d) {
      y.data<int64_t>()[d * static_cast<int64_t>(hits.size()) + static_cast<int64_t>(h)] =
          (hits[h] / strides[static_cast<size_t>(d)]) % x.dim(static_cast<size_t>(d));
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status compress_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& cond = *ctx.input(1);
  if (cond.rank() != 1 || cond.dtype() == DType::kString) {
    return ctx.error(StatusCode::kInvalidArgument, "condition must be a 1-D bool tensor, got ", cond.summary());
  }
  Tensor flat = x.reshaped({x.numel()});
  const Tensor& src = ctx.node().has_attr("axis") ? x : flat;
  int64_t axis = 0;
  if (ctx.node().has_attr("axis")) {
    RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  }
  int64_t len = src.dim(static_cast<size_t>(axis));
  if (cond.numel() > len) {
    return ctx.error(StatusCode::kInvalidArgument, "condition has ", cond.numel(), " entries, axis length is ", len);
  }
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < cond.numel(); ++i) if (cond.value_as_int64(i)) parts.push_back(slice_along(src, axis, i, 1));
  if (parts.empty()) {
    Dims d = src.dims();
    d[static_cast<size_t>(axis)] = 0;
    ctx.set_output(0, Tensor(x.dtype(), d));
  } else {
    ctx.set_output(0, concat_along(parts, axis));
  }
  return Status::OK();
}

Status reverse_sequence_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  std::vector<int64_t> lens = ctx.input(1)->to_int64_vector();
  int64_t batch_axis = ctx.node().attr_int("batch_axis", 1), time_axis = ctx.node().attr_int("time_axis", 0);
  // time_axis is compared, not added (time_axis + batch_axis overflowed for 2^63 - 1; UBSan).
  if ((batch_axis != 0 && batch_axis != 1) || time_axis != 1 - batch_axis) {
    return ctx.error(StatusCode::kInvalidArgument, "batch_axis and time_axis must be 0 and 1 in some order, got ",
                     batch_axis, " and ", time_axis);
  }
  if (x.rank() < 2 || static_cast<int64_t>(lens.size()) != x.dim(static_cast<size_t>(batch_axis))) {
    return ctx.error(StatusCode::kInvalidArgument, "sequence_lens has ", lens.size(), " entries for input ",
                     dims_to_string(x.dims()), " with batch_axis ", batch_axis, "; expected one per batch entry");
  }
  int64_t steps = x.dim(static_cast<size_t>(time_axis));
  for (size_t b = 0; b < lens.size(); ++b) {
    if (lens[b] < 0 || lens[b] > steps) {
      return ctx.error(StatusCode::kInvalidArgument, "sequence_lens[", b, "] is ", lens[b], ", expected [0, ", steps,
                       "] (the time axis length)");
    }
  }
  // Reverse the first lens[b] time steps of each batch entry.
  Tensor y = x.clone();
  std::vector<int64_t> strides = strides_of(x.dims());
  for (int64_t f = 0; f < x.numel(); ++f) {
    int64_t b = (f / strides[static_cast<size_t>(batch_axis)]) % x.dim(static_cast<size_t>(batch_axis));
    int64_t t = (f / strides[static_cast<size_t>(time_axis)]) % x.dim(static_cast<size_t>(time_axis));
    int64_t len = lens[static_cast<size_t>(b)];
    if (t < len) {
      int64_t src = f + (len - 1 - 2 * t) * strides[static_cast<size_t>(time_axis)];
      copy_elements(x, src, y, f, 1);
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_tensor_kernels(KernelRegistry& r) {
  const struct { const char* op; KernelFn fn; } kOps[] = {
      {"Constant", constant_kernel}, {"Reshape", reshape_kernel}, {"Shape", shape_kernel},
      {"Size", size_kernel}, {"Flatten", flatten_kernel}, {"Squeeze", squeeze_kernel},
      {"Unsqueeze", unsqueeze_kernel}, {"Transpose", transpose_kernel}, {"Concat", concat_kernel},
      {"Split", split_kernel}, {"Slice", slice_kernel}, {"Expand", expand_kernel}, {"Tile", tile_kernel},
      {"Pad", pad_kernel}, {"ConstantOfShape", constant_of_shape_kernel}, {"Range", range_kernel},
      {"Trilu", trilu_kernel}, {"DepthToSpace", depth_to_space_kernel},
      {"SpaceToDepth", space_to_depth_kernel}, {"EyeLike", eye_like_kernel}, {"OneHot", one_hot_kernel},
      {"NonZero", non_zero_kernel}, {"Compress", compress_kernel},
      {"ReverseSequence", reverse_sequence_kernel},
  };
  for (const auto& e : kOps) r.add("", e.op, e.fn);
}

}  // namespace pyflame_rt
