// Reference kernels: quantization ops (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear,
// QLinearConv, QLinearMatMul, MatMulInteger, ConvInteger).
//
// The integer ops dequantize into float64 (exact for 8-bit products and their sums), run the
// reference Conv/MatMul kernel, then requantize with round-half-to-even and saturation. So the
// quantized kernels share one definition of convolution with the float path.
#include <cmath>
#include <limits>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

// Runs another reference kernel (same node attributes) on the given tensors.
Expected<Tensor> run_op(const KernelContext& ctx, const char* op, const std::vector<Tensor>& inputs) {
  KernelFn fn = KernelRegistry::reference().find("", op);
  std::vector<Value> values(inputs.begin(), inputs.end());
  std::vector<const Value*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.tensor.defined() ? &v : nullptr);
  std::vector<Value> outs(1);
  KernelContext sub(ctx.node(), 13, ptrs, &outs, nullptr);
  RETURN_IF_ERROR(fn(sub));
  return outs[0].tensor;
}

// Per-tensor (1 element) or per-axis (length of `axis`) parameter for flat element i.
struct AxisParam {
  const Tensor* t = nullptr;
  int64_t axis_len = 1, inner = 1;
  double at(int64_t i, double fallback) const {
    if (!t) return fallback;
    if (t->numel() == 1) return t->value_as_double(0);
    // An empty parameter of an empty axis has no element to give (QLinearConv's bias reads
    // x_scale even when x has no channels: a division by zero, SIGFPE; kernel_run).
    if (axis_len <= 0 || inner <= 0) return fallback;
    return t->value_as_double((i / inner) % axis_len);
  }
};

Status make_param(const KernelContext& ctx, const Tensor* p, const Tensor& x, int64_t axis, const char* what,
                  AxisParam* out) {
  out->t = p;
  if (!p || p->numel() == 1) return Status::OK();
  int64_t ax = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, axis, static_cast<int64_t>(x.rank()), &ax));
  if (p->numel() != x.dim(static_cast<size_t>(ax))) {
    return ctx.error(StatusCode::kInvalidArgument, what, " has ", p->numel(), " elements, axis ", ax, " of ",
                     dims_to_string(x.dims()), " has ", x.dim(static_cast<size_t>(ax)));
  }
  out->axis_len = p->numel();
  out->inner = 1;
  for (size_t d = static_cast<size_t>(ax) + 1; d < x.rank(); ++d) out->inner *= x.dim(d);
  return Status::OK();
}

// x (float64 values) -> saturate(round_half_even(x / scale) + zp) in `to`. With `in_float`
// the division happens in float32 like the spec's reference (it decides ties such as 25.5).
Tensor quantize_values(const std::vector<double>& x, const Dims& dims, const AxisParam& scale, const AxisParam& zp,
                       DType to, bool in_float = false) {
  Tensor y(to, dims);
  dispatch_numeric(to, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      for (size_t i = 0; i < x.size(); ++i) {
        int64_t f = static_cast<int64_t>(i);
        double ratio = in_float ? static_cast<double>(static_cast<float>(x[i]) / static_cast<float>(scale.at(f, 1.0)))
                                : x[i] / scale.at(f, 1.0);
        double q = std::nearbyint(ratio) + zp.at(f, 0.0);
        y.data<T>()[i] = saturate_quantized<T>(q);
      }
    }
  });
  return y;
}

std::vector<double> dequantize_values(const Tensor& x, const AxisParam& scale, const AxisParam& zp) {
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) out[static_cast<size_t>(i)] = (x.value_as_double(i) - zp.at(i, 0.0)) * scale.at(i, 1.0);
  return out;
}

Status quantize_linear(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor* zp_t = ctx.input(2);
  DType to = zp_t ? zp_t->dtype() : DType::kUInt8;
  if (to != DType::kUInt8 && to != DType::kInt8) {
    return ctx.error(StatusCode::kInvalidArgument, "y_zero_point must be uint8 or int8, got ", dtype_name(to));
  }
  int64_t axis = ctx.node().attr_int("axis", 1);
  AxisParam scale, zp;
  RETURN_IF_ERROR(make_param(ctx, ctx.input(1), x, axis, "y_scale", &scale));
  RETURN_IF_ERROR(make_param(ctx, zp_t, x, axis, "y_zero_point", &zp));
  std::vector<double> v(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) v[static_cast<size_t>(i)] = x.value_as_double(i);
  ctx.set_output(0, quantize_values(v, x.dims(), scale, zp, to, x.dtype() == DType::kFloat32));
  return Status::OK();
}

Status dequantize_linear(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  int64_t axis = ctx.node().attr_int("axis", 1);
  AxisParam scale, zp;
  RETURN_IF_ERROR(make_param(ctx, ctx.input(1), x, axis, "x_scale", &scale));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(2), x, axis, "x_zero_point", &zp));
  Tensor y = Tensor::from_vector<double>(x.dims(), dequantize_values(x, scale, zp));
  ctx.set_output(0, convert_tensor(y, ctx.input(1)->dtype()));
  return Status::OK();
}

Status dynamic_quantize_linear(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  double lo = 0, hi = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    lo = std::min(lo, x.value_as_double(i));
    hi = std::max(hi, x.value_as_double(i));
  }
  float scale = static_cast<float>((hi - lo) / 255.0);
  double zp = scale == 0 ? 0 : std::min(255.0, std::max(0.0, std::nearbyint(-lo / static_cast<double>(scale))));
  Tensor s = Tensor::scalar<float>(scale);
  Tensor z = Tensor::scalar<uint8_t>(static_cast<uint8_t>(zp));
  AxisParam sp{&s}, zpp{&z};
  std::vector<double> v(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) v[static_cast<size_t>(i)] = x.value_as_double(i);
  if (scale == 0) sp.t = nullptr;  // all zeros: avoid dividing by zero
  ctx.set_output(0, quantize_values(v, x.dims(), sp, zpp, DType::kUInt8, true));
  ctx.set_output(1, s);
  ctx.set_output(2, z);
  return Status::OK();
}

// Integer inputs minus their zero points, as float64 tensors for the float kernels.
Status centered(const KernelContext& ctx, const Tensor& x, const Tensor* zp, int64_t axis, const char* what, Tensor* out) {
  AxisParam z;
  RETURN_IF_ERROR(make_param(ctx, zp, x, axis, what, &z));
  *out = Tensor::from_vector<double>(x.dims(), dequantize_values(x, AxisParam{}, z));
  return Status::OK();
}

Status matmul_integer(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  Tensor a, b;
  // a_zero_point is per row of A (axis -2 when 1-D per-row), b_zero_point per column of B.
  RETURN_IF_ERROR(centered(ctx, *ctx.input(0), ctx.input(2), ctx.input(0)->rank() >= 2 ? -2 : 0, "a_zero_point", &a));
  RETURN_IF_ERROR(centered(ctx, *ctx.input(1), ctx.input(3), -1, "b_zero_point", &b));
  ASSIGN_OR_RETURN(Tensor y, run_op(ctx, "MatMul", {a, b}));
  ctx.set_output(0, convert_tensor(y, DType::kInt32));
  return Status::OK();
}

Status conv_integer(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  Tensor x, w;
  RETURN_IF_ERROR(centered(ctx, *ctx.input(0), ctx.input(2), 1, "x_zero_point", &x));
  RETURN_IF_ERROR(centered(ctx, *ctx.input(1), ctx.input(3), 0, "w_zero_point", &w));
  ASSIGN_OR_RETURN(Tensor y, run_op(ctx, "Conv", {x, w}));
  ctx.set_output(0, convert_tensor(y, DType::kInt32));
  return Status::OK();
}

Status qlinear_matmul(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(8));
  const Tensor& a_q = *ctx.input(0);
  const Tensor& b_q = *ctx.input(3);
  AxisParam as, az, bs, bz;
  RETURN_IF_ERROR(make_param(ctx, ctx.input(1), a_q, -2, "a_scale", &as));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(2), a_q, -2, "a_zero_point", &az));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(4), b_q, -1, "b_scale", &bs));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(5), b_q, -1, "b_zero_point", &bz));
  Tensor a = Tensor::from_vector<double>(a_q.dims(), dequantize_values(a_q, as, az));
  Tensor b = Tensor::from_vector<double>(b_q.dims(), dequantize_values(b_q, bs, bz));
  ASSIGN_OR_RETURN(Tensor y, run_op(ctx, "MatMul", {a, b}));
  std::vector<double> v(y.data<double>(), y.data<double>() + y.numel());
  AxisParam ys{ctx.input(6)}, yz{ctx.input(7)};
  ctx.set_output(0, quantize_values(v, y.dims(), ys, yz, ctx.input(7)->dtype()));
  return Status::OK();
}

Status qlinear_conv(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(8));
  const Tensor& x_q = *ctx.input(0);
  const Tensor& w_q = *ctx.input(3);
  AxisParam xs, xz, ws, wz;
  RETURN_IF_ERROR(make_param(ctx, ctx.input(1), x_q, 1, "x_scale", &xs));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(2), x_q, 1, "x_zero_point", &xz));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(4), w_q, 0, "w_scale", &ws));
  RETURN_IF_ERROR(make_param(ctx, ctx.input(5), w_q, 0, "w_zero_point", &wz));
  Tensor x = Tensor::from_vector<double>(x_q.dims(), dequantize_values(x_q, xs, xz));
  Tensor w = Tensor::from_vector<double>(w_q.dims(), dequantize_values(w_q, ws, wz));
  std::vector<Tensor> inputs = {x, w};
  if (const Tensor* bias = ctx.input(8)) {
    // int32 bias is in units of x_scale * w_scale[m].
    if (ws.t->numel() != 1 && ws.t->numel() != bias->numel()) {
      return ctx.error(StatusCode::kInvalidArgument, "B has ", bias->numel(), " elements, w_scale ", ws.t->numel(),
                       ": expected one scale or one per output channel");
    }
    std::vector<double> b(static_cast<size_t>(bias->numel()));
    for (int64_t m = 0; m < bias->numel(); ++m) {
      double w_scale = ws.t->numel() == 1 ? ws.t->value_as_double(0) : ws.t->value_as_double(m);
      b[static_cast<size_t>(m)] = bias->value_as_double(m) * xs.at(0, 1.0) * w_scale;
    }
    inputs.push_back(Tensor::from_vector<double>(bias->dims(), b));
  }
  ASSIGN_OR_RETURN(Tensor y, run_op(ctx, "Conv", inputs));
  std::vector<double> v(y.data<double>(), y.data<double>() + y.numel());
  AxisParam ys{ctx.input(6)}, yz{ctx.input(7)};
  ctx.set_output(0, quantize_values(v, y.dims(), ys, yz, ctx.input(7)->dtype()));
  return Status::OK();
}

}  // namespace

void register_quantization_kernels(KernelRegistry& r) {
  r.add("", "QuantizeLinear", quantize_linear);
  r.add("", "DequantizeLinear", dequantize_linear);
  r.add("", "DynamicQuantizeLinear", dynamic_quantize_linear);
  r.add("", "MatMulInteger", matmul_integer);
  r.add("", "ConvInteger", conv_integer);
  r.add("", "QLinearMatMul", qlinear_matmul);
  r.add("", "QLinearConv", qlinear_conv);
}

}  // namespace pyflame_rt
