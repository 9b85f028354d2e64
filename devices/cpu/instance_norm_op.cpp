// Native InstanceNormalization on float32 [N, C, spatial...] (torch exports GroupNorm as
// Reshape -> InstanceNormalization -> Reshape -> Mul -> Add, so this is GroupNorm's kernel too):
// each (n, c) plane's mean and variance in double, then one fused multiply-add pass, planes
// split over the OpenMP team.
#include <cmath>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class InstanceNormOp : public NativeOp {
 public:
  InstanceNormOp(const Node& node, int64_t opset) : node_(node), opset_(opset), eps_(node.attr_float("epsilon", 1e-5f)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_f32(inputs[0]);
    const Tensor* scale = inputs.size() > 1 ? plain_f32(inputs[1]) : nullptr;
    const Tensor* shift = inputs.size() > 2 ? plain_f32(inputs[2]) : nullptr;
    // Shapes the reference kernel reports on (rank < 3, per-channel sizes) go to it.
    if (!x || !scale || !shift || x->rank() < 3 || x->numel() == 0 || scale->numel() != x->dim(1) ||
        shift->numel() != x->dim(1)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t channels = x->dim(1), planes = x->dim(0) * channels, size = x->numel() / planes;
    Tensor y = plain_output_tensor(DType::kFloat32, x->dims());
    const float* src = x->data<float>();
    float* dst = y.data<float>();
    const float* s = scale->data<float>();
    const float* b = shift->data<float>();
    const double eps = eps_;
#pragma omp parallel for schedule(static) if (planes > 1 && x->numel() >= (1 << 15))
    for (int64_t p = 0; p < planes; ++p) {
      const float* in = src + p * size;
      float* out = dst + p * size;
      double sum = 0;
      for (int64_t i = 0; i < size; ++i) sum += in[i];
      const double mean = sum / static_cast<double>(size);
      double sq = 0;
      for (int64_t i = 0; i < size; ++i) {
        double d = in[i] - mean;
        sq += d * d;
      }
      const double inv = 1.0 / std::sqrt(sq / static_cast<double>(size) + eps);
      const int64_t c = p % channels;
      // (x - mean) a + b, not x a + (b - mean a): with a tiny epsilon over a constant plane, a is
      // huge (1e20 for epsilon 1e-40) and x a and mean a cancel in float, losing b (0 where the
      // reference gives b; kernel_run stop 15).
      const float a = static_cast<float>(s[c] * inv), mean_f = static_cast<float>(mean), b_c = b[c];
      for (int64_t i = 0; i < size; ++i) out[i] = (in[i] - mean_f) * a + b_c;
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  float eps_;
};

}  // namespace

std::unique_ptr<NativeOp> make_instance_norm_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "InstanceNormalization" || node.inputs.size() < 3) return nullptr;
  return std::make_unique<InstanceNormOp>(node, opset);
}

void register_instance_norm_ops(NativeOpTable& t) {
  // Opset 1's consumed_inputs attribute is legacy; the arithmetic is the same from opset 6.
  t.add({"", "InstanceNormalization", 6, kNativeAnyOpset, {DType::kFloat32}, make_instance_norm_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
