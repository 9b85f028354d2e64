#include "session/bound_outputs.h"

#include <cstring>

namespace pyflame_rt {

Status check_bound_output(const std::string& name, DType dtype, const Shape& shape, const Tensor& bound) {
  const std::string what = "output '" + name + "'";
  if (dtype != DType::kUndefined && bound.dtype() != dtype) {
    return invalid_argument(what, ": expected a bound buffer of dtype ", dtype_onnx_name(dtype), ", got ",
                            dtype_onnx_name(bound.dtype()), " (", bound.summary(), ")");
  }
  if (!shape.rank_known) return Status::OK();
  bool fits = bound.rank() == shape.rank();
  for (size_t i = 0; fits && i < bound.rank(); ++i) {
    fits = !shape.dims[i].known() || shape.dims[i].value == bound.dim(i);
  }
  if (!fits) {
    return invalid_argument(what, ": expected a bound buffer of shape ", shape.to_string(), ", got ",
                            dims_to_string(bound.dims()), " (", bound.summary(), ")");
  }
  return Status::OK();
}

Expected<bool> finish_bound_output(const std::string& name, const Value& produced, const Tensor& bound) {
  if (!produced.is_tensor()) {
    return invalid_argument("output '", name, "' is not a tensor; it cannot be written into a bound buffer");
  }
  const Tensor& src = produced.tensor;
  if (src.dtype() != bound.dtype() || src.dims() != bound.dims()) {
    return invalid_argument("output '", name, "': the bound buffer is ", bound.summary(), ", the run produced ",
                            src.summary());
  }
  if (src.nbytes() > 0 && src.raw_data() == bound.raw_data()) return true;
  auto* dst = const_cast<void*>(bound.raw_data());
  if (src.dtype() == DType::kString) {
    auto* out = static_cast<std::string*>(dst);
    for (int64_t i = 0; i < src.numel(); ++i) out[i] = src.data<std::string>()[i];
  } else if (src.nbytes() > 0) {
    std::memmove(dst, src.raw_data(), src.nbytes());
  }
  return false;
}

}  // namespace pyflame_rt
