// Reference kernels: one-input elementwise ops (math, activations, Cast, Identity, Dropout).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernels/elementwise.h"

namespace pyflame_rt {

namespace {

double sign_of(double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }

// Float-only math: the op is applied in double.
#define PFRT_FLOAT_UNARY(name, expr)                                                  \
  Status name(KernelContext& ctx) {                                                   \
    const Node& n = ctx.node();                                                       \
    (void)n;                                                                          \
    return unary_map(ctx, TypeSet::kFloat, [&](double x) -> double { return expr; }); \
  }

PFRT_FLOAT_UNARY(exp_kernel, std::exp(x))
PFRT_FLOAT_UNARY(log_kernel, std::log(x))
PFRT_FLOAT_UNARY(sqrt_kernel, std::sqrt(x))
PFRT_FLOAT_UNARY(reciprocal_kernel, 1.0 / x)
PFRT_FLOAT_UNARY(floor_kernel, std::floor(x))
PFRT_FLOAT_UNARY(ceil_kernel, std::ceil(x))
PFRT_FLOAT_UNARY(round_kernel, std::nearbyint(x))  // default rounding mode: half to even
PFRT_FLOAT_UNARY(sin_kernel, std::sin(x))
PFRT_FLOAT_UNARY(cos_kernel, std::cos(x))
PFRT_FLOAT_UNARY(tan_kernel, std::tan(x))
PFRT_FLOAT_UNARY(asin_kernel, std::asin(x))
PFRT_FLOAT_UNARY(acos_kernel, std::acos(x))
PFRT_FLOAT_UNARY(atan_kernel, std::atan(x))
PFRT_FLOAT_UNARY(sinh_kernel, std::sinh(x))
PFRT_FLOAT_UNARY(cosh_kernel, std::cosh(x))
PFRT_FLOAT_UNARY(asinh_kernel, std::asinh(x))
PFRT_FLOAT_UNARY(acosh_kernel, std::acosh(x))
PFRT_FLOAT_UNARY(atanh_kernel, std::atanh(x))
PFRT_FLOAT_UNARY(erf_kernel, std::erf(x))
PFRT_FLOAT_UNARY(sigmoid_kernel, 1.0 / (1.0 + std::exp(-x)))
PFRT_FLOAT_UNARY(tanh_kernel, std::tanh(x))
PFRT_FLOAT_UNARY(softplus_kernel, x > 30 ? x : std::log1p(std::exp(x)))
PFRT_FLOAT_UNARY(softsign_kernel, x / (1.0 + std::fabs(x)))
PFRT_FLOAT_UNARY(mish_kernel, x * std::tanh(x > 30 ? x : std::log1p(std::exp(x))))
PFRT_FLOAT_UNARY(leaky_relu_kernel, x >= 0 ? x : n.attr_float("alpha", 0.01f) * x)
PFRT_FLOAT_UNARY(elu_kernel, x >= 0 ? x : n.attr_float("alpha", 1.0f) * (std::exp(x) - 1.0))
PFRT_FLOAT_UNARY(celu_kernel,
                 std::max(0.0, x) + std::min(0.0, static_cast<double>(n.attr_float("alpha", 1.0f)) *
                                                      (std::exp(x / n.attr_float("alpha", 1.0f)) - 1.0)))
PFRT_FLOAT_UNARY(selu_kernel, static_cast<double>(n.attr_float("gamma", 1.05070102214813232421875f)) *
                                  (x > 0 ? x : static_cast<double>(n.attr_float("alpha", 1.67326319217681884765625f)) *
                                                   (std::exp(x) - 1.0)))
PFRT_FLOAT_UNARY(hard_sigmoid_kernel,
                 std::max(0.0, std::min(1.0, static_cast<double>(n.attr_float("alpha", 0.2f)) * x +
                                                 static_cast<double>(n.attr_float("beta", 0.5f)))))
PFRT_FLOAT_UNARY(hard_swish_kernel, x * std::max(0.0, std::min(1.0, x / 6.0 + 0.5)))
PFRT_FLOAT_UNARY(thresholded_relu_kernel, x > n.attr_float("alpha", 1.0f) ? x : 0.0)
PFRT_FLOAT_UNARY(gelu_kernel, 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))))
#undef PFRT_FLOAT_UNARY

Status abs_kernel(KernelContext& ctx) {
  return unary_map(ctx, TypeSet::kNumeric, [](double x) { return std::fabs(x); });
}
Status neg_kernel(KernelContext& ctx) {
  return unary_map(ctx, TypeSet::kSigned, [](double x) { return -x; });
}
Status sign_kernel(KernelContext& ctx) {
  return unary_map(ctx, TypeSet::kNumeric, sign_of);
}
Status relu_kernel(KernelContext& ctx) {
  return unary_map(ctx, TypeSet::kSigned, [](double x) { return x > 0 ? x : 0.0; });
}
Status not_kernel(KernelContext& ctx) {
  return unary_map(ctx, TypeSet::kBool, [](double x) { return x != 0 ? 0.0 : 1.0; });
}
Status shrink_kernel(KernelContext& ctx) {
  double lambd = ctx.node().attr_float("lambd", 0.5f), bias = ctx.node().attr_float("bias", 0.0f);
  return unary_map(ctx, TypeSet::kNumeric, [&](double x) {
    return x < -lambd ? x + bias : (x > lambd ? x - bias : 0.0);
  });
}

// Predicates with a bool output.
template <typename P>
Status float_predicate(KernelContext& ctx, P pred) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_dtype(ctx, 0, x.dtype(), TypeSet::kFloat));
  Tensor y(DType::kBool, x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<bool>()[i] = pred(x.value_as_double(i));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}
Status isnan_kernel(KernelContext& ctx) {
  return float_predicate(ctx, [](double v) { return std::isnan(v); });
}
Status isinf_kernel(KernelContext& ctx) {
  bool pos = ctx.node().attr_int("detect_positive", 1) != 0;
  bool neg = ctx.node().attr_int("detect_negative", 1) != 0;
  return float_predicate(ctx, [&](double v) { return std::isinf(v) && ((v > 0 && pos) || (v < 0 && neg)); });
}

// Clip: bounds are attributes before opset 11 and optional scalar inputs after.
Status clip_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
  if (ctx.opset() < 11) {
    lo = ctx.node().attr_float("min", -std::numeric_limits<float>::max());
    hi = ctx.node().attr_float("max", std::numeric_limits<float>::max());
  } else {
    for (size_t i = 1; i <= 2; ++i) {
      const Tensor* b = ctx.input(i);
      if (!b) continue;
      if (b->numel() != 1) {
        return ctx.error(StatusCode::kInvalidArgument, i == 1 ? "min" : "max",
                         " must be a scalar, got shape ", dims_to_string(b->dims()));
      }
      (i == 1 ? lo : hi) = b->value_as_double(0);
    }
  }
  return unary_map(ctx, TypeSet::kNumeric, [&](double x) { return std::min(std::max(x, lo), hi); });
}

// Shortest text that reads back as the same float: what ONNX's Cast-to-string expects.
std::string number_to_string(double v, bool is_double) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "INF" : "-INF";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    double back = std::strtod(buf, nullptr);
    if (is_double ? back == v : static_cast<float>(back) == static_cast<float>(v)) break;
  }
  return buf;
}

Status cast_to(KernelContext& ctx, const Tensor& x, DType to) {
  if (to == DType::kString) {
    Tensor y(DType::kString, x.dims());
    auto* out = y.data<std::string>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (x.dtype() == DType::kString) out[i] = x.data<std::string>()[i];
      else if (dtype_is_float(x.dtype())) out[i] = number_to_string(x.value_as_double(i), x.dtype() == DType::kFloat64);
      else if (x.dtype() == DType::kBool) out[i] = x.data<bool>()[i] ? "1" : "0";
      else out[i] = std::to_string(x.value_as_int64(i));
    }
    ctx.set_output(0, std::move(y));
    return Status::OK();
  }
  if (x.dtype() == DType::kString) {
    Tensor d(DType::kFloat64, x.dims());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const std::string& s = x.data<std::string>()[i];
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || (end && *end != '\0')) {
        return ctx.error(StatusCode::kInvalidArgument, "cannot cast string '", s, "' (element ", i,
                         ") to ", dtype_name(to));
      }
      d.data<double>()[i] = v;
    }
    ctx.set_output(0, convert_tensor(d, to));
    return Status::OK();
  }
  ctx.set_output(0, convert_tensor(x, to));
  return Status::OK();
}

Status cast_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  auto to = dtype_from_onnx(static_cast<int>(ctx.node().attr_int("to", 0)));
  if (!to.ok()) return to.status().with_context(ctx.node().describe() + ": attribute 'to': ");
  return cast_to(ctx, *ctx.input(0), *to);
}

Status cast_like_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  return cast_to(ctx, *ctx.input(0), ctx.input(1)->dtype());
}

// Identity passes any Value (tensor, sequence, optional) through without copying.
Status identity_kernel(KernelContext& ctx) {
  const Value* v = ctx.input_value(0);
  ctx.set_output_value(0, v ? *v : Value());
  return Status::OK();
}

// Dropout at inference is the identity; with training_mode it drops with probability ratio.
Status dropout_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  bool training = ctx.input(2) && ctx.input(2)->value_as_int64(0) != 0;
  double ratio = ctx.input(1) ? ctx.input(1)->value_as_double(0) : ctx.node().attr_float("ratio", 0.5f);
  Tensor mask(DType::kBool, x.dims());
  if (!training || ratio == 0.0) {
    for (int64_t i = 0; i < x.numel(); ++i) mask.data<bool>()[i] = true;
    ctx.set_output(0, x);
  } else {
    uint64_t state = static_cast<uint64_t>(ctx.node().attr_int("seed", 0)) * 6364136223846793005ull + 1442695040888963407ull;
    Tensor y(x.dtype(), x.dims());
    double scale = 1.0 / (1.0 - ratio);
    for (int64_t i = 0; i < x.numel(); ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      bool keep = static_cast<double>(state >> 11) / 9007199254740992.0 >= ratio;
      mask.data<bool>()[i] = keep;
      dispatch_numeric(x.dtype(), [&](auto tag) {
        using T = typename decltype(tag)::type;
        if constexpr (is_floating_v<T>) {
          y.data<T>()[i] = from_double<T>(keep ? to_double(x.data<T>()[i]) * scale : 0.0);
        }
      });
    }
    ctx.set_output(0, std::move(y));
  }
  if (ctx.output_wanted(1)) ctx.set_output(1, std::move(mask));
  return Status::OK();
}

}  // namespace

void register_unary_kernels(KernelRegistry& r) {
  const struct { const char* op; KernelFn fn; } kOps[] = {
      {"Abs", abs_kernel}, {"Neg", neg_kernel}, {"Exp", exp_kernel}, {"Log", log_kernel},
      {"Sqrt", sqrt_kernel}, {"Reciprocal", reciprocal_kernel}, {"Floor", floor_kernel},
      {"Ceil", ceil_kernel}, {"Round", round_kernel}, {"Sign", sign_kernel}, {"Sin", sin_kernel},
      {"Cos", cos_kernel}, {"Tan", tan_kernel}, {"Asin", asin_kernel}, {"Acos", acos_kernel},
      {"Atan", atan_kernel}, {"Sinh", sinh_kernel}, {"Cosh", cosh_kernel}, {"Asinh", asinh_kernel},
      {"Acosh", acosh_kernel}, {"Atanh", atanh_kernel}, {"Erf", erf_kernel}, {"Not", not_kernel},
      {"IsNaN", isnan_kernel}, {"IsInf", isinf_kernel}, {"Relu", relu_kernel},
      {"LeakyRelu", leaky_relu_kernel}, {"Elu", elu_kernel}, {"Selu", selu_kernel},
      {"Celu", celu_kernel}, {"Sigmoid", sigmoid_kernel}, {"HardSigmoid", hard_sigmoid_kernel},
      {"HardSwish", hard_swish_kernel}, {"Softplus", softplus_kernel},
      {"Softsign", softsign_kernel}, {"Tanh", tanh_kernel}, {"ThresholdedRelu", thresholded_relu_kernel},
      {"Mish", mish_kernel}, {"Shrink", shrink_kernel}, {"Clip", clip_kernel}, {"Cast", cast_kernel},
      {"CastLike", cast_like_kernel}, {"Identity", identity_kernel}, {"Dropout", dropout_kernel},
  };
  for (const auto& e : kOps) r.add("", e.op, e.fn);
  r.add("com.microsoft", "Gelu", gelu_kernel);
}

}  // namespace pyflame_rt
