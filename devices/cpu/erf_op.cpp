// Native Erf on float32 (BERT-style Gelu when it is not fused, and models that use erf alone):
// vector_math's erf split over the OpenMP team for large tensors.
#include <algorithm>
#include <cstring>

#include "devices/cpu/native_ops.h"
#include "devices/cpu/vector_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class ErfOp : public NativeOp {
 public:
  ErfOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Value& v = inputs[0]->as_plain();
    if (!v.is_tensor() || v.tensor.dtype() != DType::kFloat32) return run_reference(node_, opset_, inputs, outputs);
    const Tensor& x = v.tensor;
    Tensor y = plain_output_tensor(DType::kFloat32, x.dims());
    constexpr int64_t kChunk = 16384;
    const int64_t n = x.numel(), chunks = (n + kChunk - 1) / kChunk;
    const float* src = x.data<float>();
    float* dst = y.data<float>();
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (int64_t c = 0; c < chunks; ++c) {
      int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
      std::memcpy(dst + begin, src + begin, static_cast<size_t>(len) * sizeof(float));
      erf_inplace(dst + begin, len);
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_erf_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "Erf") return nullptr;
  return std::make_unique<ErfOp>(node, opset);
}

void register_erf_ops(NativeOpTable& t) {
  t.add({"", "Erf", 9, kNativeAnyOpset, {DType::kFloat32}, make_erf_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
