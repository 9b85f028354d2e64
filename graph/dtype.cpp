#include "graph/dtype.h"

#include <cstdint>

namespace pyflame_rt {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::kFloat32: case DType::kInt32: case DType::kUInt32: return 4;
    case DType::kFloat64: case DType::kInt64: case DType::kUInt64: return 8;
    case DType::kFloat16: case DType::kBFloat16: case DType::kInt16: case DType::kUInt16: return 2;
    case DType::kInt8: case DType::kUInt8: case DType::kBool: return 1;
    case DType::kString: return sizeof(std::string);
    case DType::kUndefined: return 0;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kInt8: return "int8";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kUInt8: return "uint8";
    case DType::kUInt16: return "uint16";
    case DType::kUInt32: return "uint32";
    case DType::kUInt64: return "uint64";
    case DType::kBool: return "bool";
    case DType::kString: return "string";
    case DType::kUndefined: return "undefined";
  }
  return "undefined";
}

std::string dtype_onnx_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "tensor(float)";
    case DType::kFloat64: return "tensor(double)";
    case DType::kFloat16: return "tensor(float16)";
    case DType::kBFloat16: return "tensor(bfloat16)";
    case DType::kBool: return "tensor(bool)";
    case DType::kString: return "tensor(string)";
    default: return std::string("tensor(") + dtype_name(t) + ")";
  }
}

bool dtype_is_float(DType t) {
  return t == DType::kFloat32 || t == DType::kFloat64 || t == DType::kFloat16 ||
         t == DType::kBFloat16;
}

bool dtype_is_signed(DType t) {
  return t == DType::kInt8 || t == DType::kInt16 || t == DType::kInt32 || t == DType::kInt64;
}

bool dtype_is_integer(DType t) {
  return dtype_is_signed(t) || t == DType::kUInt8 || t == DType::kUInt16 ||
         t == DType::kUInt32 || t == DType::kUInt64;
}

Expected<DType> dtype_from_onnx(int code) {
  switch (code) {
    case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 9: case 10: case 11:
    case 12: case 13: case 16:
      return static_cast<DType>(code);
    case 14: case 15:
      return not_implemented("complex element types are not supported (ONNX type code ", code,
                             ")");
    default:
      return invalid_argument("unknown ONNX element type code ", code);
  }
}

Expected<DType> dtype_from_name(const std::string& n) {
  static const struct { const char* name; DType t; } kNames[] = {
      {"float32", DType::kFloat32}, {"float", DType::kFloat32}, {"float64", DType::kFloat64},
      {"double", DType::kFloat64}, {"float16", DType::kFloat16}, {"half", DType::kFloat16},
      {"bfloat16", DType::kBFloat16}, {"int8", DType::kInt8}, {"int16", DType::kInt16},
      {"int32", DType::kInt32}, {"int64", DType::kInt64}, {"uint8", DType::kUInt8},
      {"uint16", DType::kUInt16}, {"uint32", DType::kUInt32}, {"uint64", DType::kUInt64},
      {"bool", DType::kBool}, {"string", DType::kString}};
  for (const auto& e : kNames) {
    if (n == e.name) return e.t;
  }
  return invalid_argument("unknown dtype name '", n, "'");
}

}  // namespace pyflame_rt
