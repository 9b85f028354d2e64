// Reference kernels: broadcasting two-input and variadic elementwise ops (arithmetic,
// comparisons, logic, Pow, Mod, BitShift, Max/Min/Sum/Mean, Where, PRelu).
#include <cmath>
#include <type_traits>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernels/elementwise.h"

namespace pyflame_rt {

namespace {

template <typename C>
C divide(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    if (b == 0) return C(0);  // C truncation; division by zero gives 0
    // MIN / -1 overflows (SIGFPE on x86): the negation, wrapped (MIN itself).
    if constexpr (std::is_signed_v<C>) { if (b == C(-1)) return wrapping_sub(C(0), a); }
    return static_cast<C>(a / b);
  } else {
    return a / b;
  }
}

Status add_kernel(KernelContext& ctx) {
  return binary_map<false>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return wrapping_add(a, b); });
}
Status sub_kernel(KernelContext& ctx) {
  return binary_map<false>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return wrapping_sub(a, b); });
}
Status mul_kernel(KernelContext& ctx) {
  return binary_map<false>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return wrapping_mul(a, b); });
}
Status div_kernel(KernelContext& ctx) {
  return binary_map<false>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return divide(a, b); });
}

Status mod_kernel(KernelContext& ctx) {
  bool fmod = ctx.node().attr_int("fmod", 0) != 0;
  if (!fmod && ctx.input(0) && dtype_is_float(ctx.input(0)->dtype())) {
    return ctx.error(StatusCode::kInvalidArgument, "fmod must be 1 for floating-point inputs");
  }
  return binary_map<false>(ctx, TypeSet::kNumeric, [&](auto a, auto b) {
    using C = decltype(a);
    if constexpr (std::is_floating_point_v<C>) {
      return static_cast<C>(std::fmod(a, b));
    } else if constexpr (std::is_same_v<C, bool>) {
      return a;  // never reached: bool is not a Mod type
    } else {
      if (b == 0) return C(0);
      if constexpr (std::is_signed_v<C>) { if (b == C(-1)) return C(0); }  // MIN % -1 traps on x86
      C r = static_cast<C>(a % b);
      // Python-style: the remainder takes the divisor's sign (fmod=0).
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = wrapping_add(r, b);
      return r;
    }
  });
}

Status bitshift_kernel(KernelContext& ctx) {
  std::string dir = ctx.node().attr_string("direction", "");
  if (dir != "LEFT" && dir != "RIGHT") {
    return ctx.error(StatusCode::kInvalidArgument, "direction must be LEFT or RIGHT, got '", dir, "'");
  }
  bool left = dir == "LEFT";
  return binary_map<false>(ctx, TypeSet::kInteger, [&](auto a, auto b) {
    using C = decltype(a);
    if constexpr (std::is_integral_v<C> && !std::is_same_v<C, bool>) {
      // On the unsigned bits: a negative count, or a signed operand shifted left, is undefined.
      if constexpr (std::is_signed_v<C>) { if (b < 0) return C(0); }
      if (b >= static_cast<C>(sizeof(C) * 8)) return C(0);
      using U = std::make_unsigned_t<decltype(+a)>;
      const U bits = static_cast<U>(static_cast<std::make_unsigned_t<C>>(a));
      return static_cast<C>(left ? (bits << b) : (bits >> b));
    } else {
      return a;
    }
  });
}

Status and_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kBool, [](auto a, auto b) { return a && b; });
}
Status or_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kBool, [](auto a, auto b) { return a || b; });
}
Status xor_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kBool, [](auto a, auto b) { return a != b; });
}
Status equal_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kAll, [](auto a, auto b) { return a == b; });
}
Status less_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return a < b; });
}
Status greater_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return a > b; });
}
Status less_equal_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return a <= b; });
}
Status greater_equal_kernel(KernelContext& ctx) {
  return binary_map<true>(ctx, TypeSet::kNumeric, [](auto a, auto b) { return a >= b; });
}

// Pow allows different base and exponent types (opset 12+): computed in double, stored in
// the base's type.
Status pow_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  RETURN_IF_ERROR(check_dtype(ctx, 0, a.dtype(), TypeSet::kNumeric));
  RETURN_IF_ERROR(check_dtype(ctx, 1, b.dtype(), TypeSet::kNumeric));
  Dims out_dims;
  RETURN_IF_ERROR(broadcast_dims(ctx, a.dims(), b.dims(), &out_dims));
  BroadcastIndexMap ia = broadcast_index_map(a.dims(), out_dims);
  BroadcastIndexMap ib = broadcast_index_map(b.dims(), out_dims);
  Tensor y(a.dtype(), out_dims);
  dispatch_numeric(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) {
      double base = a.value_as_double(ia[static_cast<size_t>(i)]);
      double expo = b.value_as_double(ib[static_cast<size_t>(i)]);
      double v = std::pow(base, expo);
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        out[i] = static_cast<T>(int64_from_double(v));
      } else {
        out[i] = from_double<T>(v);
      }
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Variadic ops fold pairwise with broadcasting: y = f(f(x0, x1), x2) ...
template <typename F>
Status variadic(KernelContext& ctx, F f, bool mean) {
  if (ctx.num_inputs() == 0) return ctx.error(StatusCode::kInvalidArgument, "needs at least one input");
  for (size_t i = 0; i < ctx.num_inputs(); ++i) RETURN_IF_ERROR(ctx.require_input(i));
  const Tensor& first = *ctx.input(0);
  RETURN_IF_ERROR(check_dtype(ctx, 0, first.dtype(), TypeSet::kNumeric));
  Dims out_dims = first.dims();
  for (size_t i = 1; i < ctx.num_inputs(); ++i) {
    if (ctx.input(i)->dtype() != first.dtype()) {
      return ctx.error(StatusCode::kInvalidArgument, "input ", i, " is ", dtype_name(ctx.input(i)->dtype()),
                       ", input 0 is ", dtype_name(first.dtype()));
    }
    Dims d;
    RETURN_IF_ERROR(broadcast_dims(ctx, out_dims, ctx.input(i)->dims(), &d));
    out_dims = d;
  }
  Tensor y(first.dtype(), out_dims);
  int64_t n = y.numel();
  dispatch_numeric(first.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = std::conditional_t<is_half_v<T> || std::is_floating_point_v<T>, double,
                                 std::conditional_t<std::is_same_v<T, bool>, int, T>>;
    std::vector<C> acc(static_cast<size_t>(n));
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      const Tensor& x = *ctx.input(k);
      BroadcastIndexMap map = broadcast_index_map(x.dims(), out_dims);
      const T* p = x.data<T>();
      for (int64_t i = 0; i < n; ++i) {
        C v;
        if constexpr (std::is_same_v<C, double>) v = to_double(p[map[static_cast<size_t>(i)]]);
        else v = p[map[static_cast<size_t>(i)]];
        acc[static_cast<size_t>(i)] = k == 0 ? v : f(acc[static_cast<size_t>(i)], v);
      }
    }
    T* out = y.data<T>();
    for (int64_t i = 0; i < n; ++i) {
      C v = acc[static_cast<size_t>(i)];
      if (mean) v = static_cast<C>(v / static_cast<C>(ctx.num_inputs()));
      if constexpr (std::is_same_v<C, double>) out[i] = from_double<T>(v);
      else out[i] = static_cast<T>(v);
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// numpy.maximum/minimum propagate NaN.
template <typename C>
C max_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) { if (std::isnan(a) || std::isnan(b)) return NAN; }
  return a > b ? a : b;
}
template <typename C>
C min_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) { if (std::isnan(a) || std::isnan(b)) return NAN; }
  return a < b ? a : b;
}

Status max_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return max_nan(a, b); }, false);
}
Status min_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return min_nan(a, b); }, false);
}
Status sum_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return wrapping_add(a, b); }, false);
}
Status mean_kernel(KernelContext& ctx) {
  return variadic(ctx, [](auto a, auto b) { return wrapping_add(a, b); }, true);
}

Status where_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& c = *ctx.input(0);
  const Tensor& a = *ctx.input(1);
  const Tensor& b = *ctx.input(2);
  if (c.dtype() != DType::kBool) {
    return ctx.error(StatusCode::kInvalidArgument, "condition must be bool, got ", dtype_name(c.dtype()));
  }
  if (a.dtype() != b.dtype()) {
    return ctx.error(StatusCode::kInvalidArgument, "X and Y must have the same dtype, got ",
                     dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  }
  Dims d1, out_dims;
  RETURN_IF_ERROR(broadcast_dims(ctx, c.dims(), a.dims(), &d1));
  RETURN_IF_ERROR(broadcast_dims(ctx, d1, b.dims(), &out_dims));
  BroadcastIndexMap ic = broadcast_index_map(c.dims(), out_dims);
  BroadcastIndexMap ia = broadcast_index_map(a.dims(), out_dims);
  BroadcastIndexMap ib = broadcast_index_map(b.dims(), out_dims);
  Tensor y(a.dtype(), out_dims);
  for (int64_t i = 0; i < y.numel(); ++i) {
    size_t k = static_cast<size_t>(i);
    bool pick_a = c.data<bool>()[ic[k]];
    copy_elements(pick_a ? a : b, pick_a ? ia[k] : ib[k], y, i, 1);
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status prelu_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& slope = *ctx.input(1);
  Dims out_dims;
  RETURN_IF_ERROR(broadcast_dims(ctx, x.dims(), slope.dims(), &out_dims));
  if (out_dims != x.dims()) {
    return ctx.error(StatusCode::kInvalidArgument, "slope ", dims_to_string(slope.dims()),
                     " must broadcast to X ", dims_to_string(x.dims()));
  }
  return binary_map<false>(ctx, TypeSet::kSigned, [](auto a, auto s) {
    if constexpr (std::is_same_v<decltype(a), bool>) return a;  // never reached: not a PRelu type
    else return a < 0 ? wrapping_mul(a, s) : a;
  });
}

}  // namespace

void register_binary_kernels(KernelRegistry& r) {
  const struct { const char* op; KernelFn fn; } kOps[] = {
      {"Add", add_kernel}, {"Sub", sub_kernel}, {"Mul", mul_kernel}, {"Div", div_kernel},
      {"Pow", pow_kernel}, {"Mod", mod_kernel}, {"BitShift", bitshift_kernel},
      {"And", and_kernel}, {"Or", or_kernel}, {"Xor", xor_kernel}, {"Equal", equal_kernel},
      {"Less", less_kernel}, {"Greater", greater_kernel}, {"LessOrEqual", less_equal_kernel},
      {"GreaterOrEqual", greater_equal_kernel}, {"Max", max_kernel}, {"Min", min_kernel},
      {"Sum", sum_kernel}, {"Mean", mean_kernel}, {"Where", where_kernel}, {"PRelu", prelu_kernel},
  };
  for (const auto& e : kOps) r.add("", e.op, e.fn);
}

}  // namespace pyflame_rt
