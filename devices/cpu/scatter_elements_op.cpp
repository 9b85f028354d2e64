// Native ScatterElements without a reduction, every fixed-width dtype, int64/int32 indices:
// the data is copied once, then the indices are walked with an odometer that keeps the
// element offset of each index position in data (no per-element division by strides or
// value_as_int64 reads, as in the reference), each update written to that offset moved along
// the axis. Reductions, bad shapes and out-of-range indices go to the reference kernel, which
// handles or names them; nothing is written before every index is checked.
#include "devices/cpu/scatter_elements_op.h"

#include <cstring>

namespace pyflame_rt {
namespace cpu {

namespace {

class ScatterElementsOp : public NativeOp {
 public:
  ScatterElementsOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    const Tensor* idx = inputs.size() > 2 ? plain_fixed(inputs[1]) : nullptr;
    const Tensor* upd = inputs.size() > 2 ? plain_fixed(inputs[2]) : nullptr;
    if (!x || !idx || !upd || node_.attr_string("reduction", "none") != "none" || upd->dtype() != x->dtype() ||
        (idx->dtype() != DType::kInt64 && idx->dtype() != DType::kInt32) || idx->dims() != upd->dims() ||
        idx->rank() != x->rank() || x->rank() == 0) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t rank = static_cast<int64_t>(x->rank());
    int64_t axis = node_.attr_int("axis", 0);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);
    for (int64_t d = 0; d < rank; ++d) {
      if (d != axis && idx->dim(static_cast<size_t>(d)) > x->dim(static_cast<size_t>(d))) {
        return run_reference(node_, opset_, inputs, outputs);
      }
    }
    const size_t ax = static_cast<size_t>(axis);
    std::vector<int64_t> stride(x->rank(), 1);
    for (int64_t d = rank - 2; d >= 0; --d) stride[static_cast<size_t>(d)] = stride[static_cast<size_t>(d + 1)] * x->dim(static_cast<size_t>(d + 1));
    // Target offsets first: an out-of-range index falls back before anything is written.
    const int64_t n = idx->numel(), len = x->dim(ax);
    std::vector<int64_t> target(static_cast<size_t>(n));
    std::vector<int64_t> coord(x->rank(), 0);
    int64_t base = 0;  // offset in data of the current index position
    for (int64_t i = 0; i < n; ++i) {
      const int64_t raw = idx->dtype() == DType::kInt64 ? idx->data<int64_t>()[i] : idx->data<int32_t>()[i];
      const int64_t k = raw < 0 ? raw + len : raw;
      if (k < 0 || k >= len) return run_reference(node_, opset_, inputs, outputs);  // it names the index
      target[static_cast<size_t>(i)] = base + (k - coord[ax]) * stride[ax];
      for (int64_t d = rank - 1; d >= 0; --d) {  // odometer over the indices' dims
        const size_t du = static_cast<size_t>(d);
        base += stride[du];
        if (++coord[du] < idx->dim(du)) break;
        base -= stride[du] * coord[du];
        coord[du] = 0;
      }
    }
    Tensor y = plain_output_tensor(x->dtype(), x->dims());
    std::memcpy(y.raw_data(), x->raw_data(), x->nbytes());
    const size_t es = dtype_size(x->dtype());
    char* dst = static_cast<char*>(y.raw_data());
    const char* src = static_cast<const char*>(upd->raw_data());
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(dst + static_cast<size_t>(target[static_cast<size_t>(i)]) * es, src + static_cast<size_t>(i) * es, es);
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_scatter_elements_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "ScatterElements") return nullptr;
  return std::make_unique<ScatterElementsOp>(node, opset);
}

void register_scatter_elements_ops(NativeOpTable& t) {
  t.add({"", "ScatterElements", 11, kNativeAnyOpset, fixed_width_dtypes(), make_scatter_elements_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
