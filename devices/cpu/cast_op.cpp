// Native Cast and CastLike between numeric dtypes: the reference conversion (one definition of
// the semantics, devices/ref/kernel_util) split over the OpenMP team for large tensors. Strings
// take the reference kernel.
#include <cstring>

#include "devices/cpu/native_ops.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class CastOp : public NativeOp {
 public:
  CastOp(const Node& node, int64_t opset, DType to) : node_(node), opset_(opset), to_(to) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Value& v = inputs[0]->as_plain();
    DType to = to_;
    if (node_.op_type == "CastLike") {
      if (inputs.size() < 2 || !inputs[1] || !inputs[1]->as_plain().is_tensor()) return run_reference(node_, opset_, inputs, outputs);
      to = inputs[1]->as_plain().tensor.dtype();
    }
    if (!v.is_tensor() || v.tensor.dtype() == DType::kString || to == DType::kString) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& x = v.tensor;
    Tensor y = plain_output_tensor(to, x.dims());  // a same-dtype Cast copies too: the output must not alias its input
    constexpr int64_t kChunk = 1 << 16;
    const int64_t n = x.numel(), chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t begin = c * kChunk, end = std::min(n, begin + kChunk);
      if (x.dtype() == to) {
        std::memcpy(static_cast<char*>(y.raw_data()) + begin * dtype_size(to),
                    static_cast<const char*>(x.raw_data()) + begin * dtype_size(to), static_cast<size_t>(end - begin) * dtype_size(to));
      } else {
        convert_range(x, y, begin, end);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  DType to_;
};

}  // namespace

std::unique_ptr<NativeOp> make_cast_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type == "CastLike") return std::make_unique<CastOp>(node, opset, DType::kUndefined);
  if (node.op_type != "Cast") return nullptr;
  auto to = dtype_from_onnx(static_cast<int>(node.attr_int("to", 0)));
  if (!to.ok() || *to == DType::kString) return nullptr;
  return std::make_unique<CastOp>(node, opset, *to);
}

void register_cast_ops(NativeOpTable& t) {
  // Opset 6 made `to` an integer (before: a type name); CastLike came with opset 15.
  t.add({"", "Cast", 6, kNativeAnyOpset, fixed_width_dtypes(), make_cast_op});
  t.add({"", "CastLike", 15, kNativeAnyOpset, fixed_width_dtypes(), make_cast_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
