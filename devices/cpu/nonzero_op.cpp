// Native NonZero on every fixed-width dtype: one pass counts the non-zero elements (read as
// their own type: -0.0 is zero, NaN is not), a second writes their coordinates, [rank, count]
// in row-major order, by stepping an odometer instead of dividing each flat index by the
// strides as the reference does. Detection post-processing runs it once or twice per class.
#include <cstring>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

template <typename T>
void nonzero_typed(const Tensor& x, Tensor* y, int64_t count) {
  const T* src = x.data<T>();
  const int64_t n = x.numel(), rank = static_cast<int64_t>(x.rank());
  int64_t* dst = y->data<int64_t>();
  std::vector<int64_t> coord(static_cast<size_t>(rank), 0);
  int64_t h = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (src[i] != T(0)) {
      for (int64_t d = 0; d < rank; ++d) dst[d * count + h] = coord[static_cast<size_t>(d)];
      ++h;
    }
    for (int64_t d = rank - 1; d >= 0; --d) {  // odometer
      if (++coord[static_cast<size_t>(d)] < x.dim(static_cast<size_t>(d))) break;
      coord[static_cast<size_t>(d)] = 0;
    }
  }
}

template <typename T>
int64_t count_nonzero(const Tensor& x) {
  const T* src = x.data<T>();
  int64_t c = 0;
  for (int64_t i = 0; i < x.numel(); ++i) c += src[i] != T(0);
  return c;
}

template <typename T>
Tensor nonzero(const Tensor& x) {
  const int64_t count = count_nonzero<T>(x);
  Tensor y = plain_output_tensor(DType::kInt64, {static_cast<int64_t>(x.rank()), count});
  if (count > 0) nonzero_typed<T>(x, &y, count);
  return y;
}

class NonZeroOp : public NativeOp {
 public:
  NonZeroOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    if (!x) return run_reference(node_, opset_, inputs, outputs);
    Tensor y;
    switch (x->dtype()) {
      case DType::kBool: y = nonzero<bool>(*x); break;
      case DType::kFloat32: y = nonzero<float>(*x); break;
      case DType::kFloat64: y = nonzero<double>(*x); break;
      case DType::kInt64: y = nonzero<int64_t>(*x); break;
      case DType::kInt32: y = nonzero<int32_t>(*x); break;
      case DType::kInt8: y = nonzero<int8_t>(*x); break;
      case DType::kUInt8: y = nonzero<uint8_t>(*x); break;
      default: return run_reference(node_, opset_, inputs, outputs);  // half types: zero is two bit patterns
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_nonzero_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "NonZero") return nullptr;
  return std::make_unique<NonZeroOp>(node, opset);
}

void register_nonzero_ops(NativeOpTable& t) {
  t.add({"", "NonZero", 9, kNativeAnyOpset,
         {DType::kBool, DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kInt32, DType::kInt8, DType::kUInt8},
         make_nonzero_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
