// Reference kernels of domain ai.onnx.ml that shape what a converted scikit-learn model
// returns: ZipMap (class probabilities as one {label: probability} map per row, the second
// output of every skl2onnx classifier).
#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

constexpr const char* kMlDomain = "ai.onnx.ml";

// X float [N, C] (or [C]: one row) -> a sequence of N maps from the C class labels
// (classlabels_strings or classlabels_int64s, exactly one of them) to that row's values.
Status zip_map(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (x.dtype() != DType::kFloat32) {
    return ctx.error(StatusCode::kInvalidArgument, "input X must be float32, got ", dtype_name(x.dtype()));
  }
  if (x.rank() != 1 && x.rank() != 2) {
    return ctx.error(StatusCode::kInvalidArgument, "input X must have shape [N, C] or [C], got ",
                     dims_to_string(x.dims()));
  }
  std::vector<std::string> strings = ctx.node().attr_strings("classlabels_strings");
  std::vector<int64_t> ints = ctx.node().attr_ints("classlabels_int64s");
  if (strings.empty() == ints.empty()) {
    return ctx.error(StatusCode::kInvalidArgument,
                     "expected exactly one of classlabels_strings and classlabels_int64s, got ",
                     strings.size(), " strings and ", ints.size(), " integers");
  }
  const int64_t classes = x.dim(x.rank() - 1);
  const int64_t rows = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t labels = strings.empty() ? static_cast<int64_t>(ints.size()) : static_cast<int64_t>(strings.size());
  if (labels != classes) {
    return ctx.error(StatusCode::kInvalidArgument, "input X has ", classes, " columns (shape ",
                     dims_to_string(x.dims()), "), the node has ", labels, " class labels");
  }
  Tensor keys = strings.empty() ? Tensor::from_vector<int64_t>({classes}, ints)
                                : Tensor::from_vector<std::string>({classes}, strings);
  std::vector<Value> maps;
  maps.reserve(static_cast<size_t>(rows));
  const float* p = x.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> row(p + r * classes, p + (r + 1) * classes);
    maps.push_back(Value::make_map(keys, Tensor::from_vector<float>({classes}, row)));
  }
  ctx.set_output_value(0, Value::make_map_sequence(std::move(maps)));
  return Status::OK();
}

}  // namespace

void register_ml_kernels(KernelRegistry& r) { r.add(kMlDomain, "ZipMap", zip_map); }

}  // namespace pyflame_rt
