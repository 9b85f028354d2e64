// Templates shared by the unary and binary elementwise kernels: apply a per-element functor
// over every numeric dtype an op allows, with numpy broadcasting for binary ops.
#pragma once

#include <type_traits>

#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

enum class TypeSet { kFloat, kNumeric, kSigned, kInteger, kBool, kAll };

inline bool dtype_in(DType t, TypeSet set) {
  switch (set) {
    case TypeSet::kFloat: return dtype_is_float(t);
    case TypeSet::kNumeric: return dtype_is_float(t) || dtype_is_integer(t);
    case TypeSet::kSigned: return dtype_is_float(t) || dtype_is_signed(t);
    case TypeSet::kInteger: return dtype_is_integer(t);
    case TypeSet::kBool: return t == DType::kBool;
    case TypeSet::kAll: return t != DType::kString && t != DType::kUndefined;
  }
  return false;
}

inline const char* type_set_name(TypeSet set) {
  switch (set) {
    case TypeSet::kFloat: return "a float type";
    case TypeSet::kNumeric: return "a numeric type";
    case TypeSet::kSigned: return "a signed numeric type";
    case TypeSet::kInteger: return "an integer type";
    case TypeSet::kBool: return "bool";
    case TypeSet::kAll: return "a numeric or bool type";
  }
  return "?";
}

inline Status check_dtype(const KernelContext& ctx, size_t input, DType t, TypeSet set) {
  if (dtype_in(t, set)) return Status::OK();
  return ctx.error(StatusCode::kInvalidArgument, "input ", input, " must be ", type_set_name(set),
                   ", got ", dtype_name(t));
}

// y[i] = f(x[i]) computed in double for floats (so float16 stays accurate) and in the native
// type for integers. `f` takes and returns the compute type.
template <typename F>
Status unary_map(KernelContext& ctx, TypeSet set, F f) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_dtype(ctx, 0, x.dtype(), set));
  Tensor y(x.dtype(), x.dims());
  int64_t n = x.numel();
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    if constexpr (is_floating_v<T>) {
      for (int64_t i = 0; i < n; ++i) out[i] = from_double<T>(f(to_double(in[i])));
    } else if constexpr (std::is_same_v<T, bool>) {
      for (int64_t i = 0; i < n; ++i) out[i] = f(static_cast<double>(in[i])) != 0;
    } else {
      // from_double: a result past T's range (Abs of uint64 max is 2^64 as a double) saturates.
      for (int64_t i = 0; i < n; ++i) out[i] = from_double<T>(f(static_cast<double>(in[i])));
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Broadcast binary op. `f(a, b)` receives values of the input type T (half types as float)
// and returns the output element; OutT chooses the output dtype (same as input unless bool).
template <bool kBoolOutput, typename F>
Status binary_map(KernelContext& ctx, TypeSet set, F f) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& a = *ctx.input(0);
  const Tensor& b = *ctx.input(1);
  RETURN_IF_ERROR(check_dtype(ctx, 0, a.dtype(), set));
  if (a.dtype() != b.dtype()) {
    return ctx.error(StatusCode::kInvalidArgument, "inputs must have the same dtype, got ",
                     dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
  }
  Dims out_dims;
  RETURN_IF_ERROR(broadcast_dims(ctx, a.dims(), b.dims(), &out_dims));
  Tensor y(kBoolOutput ? DType::kBool : a.dtype(), out_dims);
  int64_t n = y.numel();
  bool same = a.dims() == out_dims && b.dims() == out_dims;
  BroadcastIndexMap ia, ib;
  if (!same) {
    ia = broadcast_index_map(a.dims(), out_dims);
    ib = broadcast_index_map(b.dims(), out_dims);
  }
  dispatch_numeric(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    using C = std::conditional_t<is_half_v<T>, float, T>;  // compute type
    using O = std::conditional_t<kBoolOutput, bool, T>;
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    O* out = y.data<O>();
    for (int64_t i = 0; i < n; ++i) {
      C va = static_cast<C>(pa[same ? i : ia[static_cast<size_t>(i)]]);
      C vb = static_cast<C>(pb[same ? i : ib[static_cast<size_t>(i)]]);
      if constexpr (kBoolOutput) {
        out[i] = f(va, vb);
      } else if constexpr (is_half_v<T>) {
        out[i] = T(static_cast<float>(f(va, vb)));
      } else {
        out[i] = static_cast<T>(f(va, vb));
      }
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace pyflame_rt
