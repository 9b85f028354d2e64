// Element types of tensors, their sizes and names, and a dispatcher from a runtime DType to a
// C++ type for templated kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

#include "graph/half.h"
#include "graph/status.h"

namespace pyflame_rt {

// Values equal ONNX's TensorProto::DataType so conversion is a cast, checked by a test.
enum class DType : int {
  kUndefined = 0,
  kFloat32 = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kUInt16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUInt32 = 12,
  kUInt64 = 13,
  kBFloat16 = 16,
};

size_t dtype_size(DType t);           // bytes per element; sizeof(std::string) for kString
const char* dtype_name(DType t);      // "float32", "int64", ...
std::string dtype_onnx_name(DType t);  // "tensor(float)", "tensor(int64)", ... (ONNX Runtime's)
bool dtype_is_float(DType t);         // float16/bfloat16/float32/float64
bool dtype_is_integer(DType t);       // signed or unsigned integer (not bool)
bool dtype_is_signed(DType t);
Expected<DType> dtype_from_onnx(int onnx_elem_type);  // rejects complex and unknown codes
Expected<DType> dtype_from_name(const std::string& name);  // "float32" or "float" etc.

template <typename T> struct DTypeOf;
#define PFRT_DTYPE_OF(cpp, dt) \
  template <> struct DTypeOf<cpp> { static constexpr DType value = DType::dt; };
PFRT_DTYPE_OF(float, kFloat32)
PFRT_DTYPE_OF(double, kFloat64)
PFRT_DTYPE_OF(Float16, kFloat16)
PFRT_DTYPE_OF(BFloat16, kBFloat16)
PFRT_DTYPE_OF(int8_t, kInt8)
PFRT_DTYPE_OF(int16_t, kInt16)
PFRT_DTYPE_OF(int32_t, kInt32)
PFRT_DTYPE_OF(int64_t, kInt64)
PFRT_DTYPE_OF(uint8_t, kUInt8)
PFRT_DTYPE_OF(uint16_t, kUInt16)
PFRT_DTYPE_OF(uint32_t, kUInt32)
PFRT_DTYPE_OF(uint64_t, kUInt64)
PFRT_DTYPE_OF(bool, kBool)
PFRT_DTYPE_OF(std::string, kString)
#undef PFRT_DTYPE_OF

template <typename T> struct TypeTag { using type = T; };

// Calls fn(TypeTag<T>{}) with T the C++ type of `t`. Returns false if `t` is not covered
// (kUndefined). Usage:
//   dispatch_dtype(x.dtype(), [&](auto tag) { using T = typename decltype(tag)::type; ... });
template <typename Fn>
bool dispatch_dtype(DType t, Fn&& fn) {
  switch (t) {
    case DType::kFloat32: fn(TypeTag<float>{}); return true;
    case DType::kFloat64: fn(TypeTag<double>{}); return true;
    case DType::kFloat16: fn(TypeTag<Float16>{}); return true;
    case DType::kBFloat16: fn(TypeTag<BFloat16>{}); return true;
    case DType::kInt8: fn(TypeTag<int8_t>{}); return true;
    case DType::kInt16: fn(TypeTag<int16_t>{}); return true;
    case DType::kInt32: fn(TypeTag<int32_t>{}); return true;
    case DType::kInt64: fn(TypeTag<int64_t>{}); return true;
    case DType::kUInt8: fn(TypeTag<uint8_t>{}); return true;
    case DType::kUInt16: fn(TypeTag<uint16_t>{}); return true;
    case DType::kUInt32: fn(TypeTag<uint32_t>{}); return true;
    case DType::kUInt64: fn(TypeTag<uint64_t>{}); return true;
    case DType::kBool: fn(TypeTag<bool>{}); return true;
    case DType::kString: fn(TypeTag<std::string>{}); return true;
    default: return false;
  }
}

// Like dispatch_dtype but only numeric types (no string): for arithmetic kernels.
template <typename Fn>
bool dispatch_numeric(DType t, Fn&& fn) {
  if (t == DType::kString) return false;
  return dispatch_dtype(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (!std::is_same_v<T, std::string>) fn(tag);
  });
}

}  // namespace pyflame_rt
