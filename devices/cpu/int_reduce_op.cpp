// Native ReduceSum, ReduceProd, ReduceMin and ReduceMax on int64 and int32, over any set of
// axes (the tensors are small: shapes, counts), in the element type as the reference does
// (wrapping on overflow). The input is walked row by row with the output's strides set to 0
// on the reduced axes (broadcast_rows.h). Empty inputs, noop_with_empty_axes and bad axes go
// to the reference kernel, which handles or names them.
#include "devices/cpu/int_reduce_op.h"

#include <algorithm>
#include <limits>
#include <type_traits>

#include "devices/cpu/broadcast_rows.h"

namespace pyflame_rt {
namespace cpu {

namespace {

enum class IntReduce { kSum, kProd, kMin, kMax };

template <typename T>
void reduce_rows(IntReduce kind, const Tensor& x, const std::vector<bool>& reduced, Tensor* y) {
  T init = 0;
  if (kind == IntReduce::kProd) init = 1;
  if (kind == IntReduce::kMin) init = std::numeric_limits<T>::max();
  if (kind == IntReduce::kMax) init = std::numeric_limits<T>::lowest();
  T* dst = y->data<T>();
  std::fill(dst, dst + y->numel(), init);
  Dims kept = x.dims();  // the output with reduced axes as 1s
  for (size_t d = 0; d < kept.size(); ++d) if (reduced[d]) kept[d] = 1;
  const Dims rows = x.rank() == 0 ? Dims{1} : x.dims();
  const Dims kept_rows = x.rank() == 0 ? Dims{1} : kept;
  std::vector<std::vector<int64_t>> st = {broadcast_strides(rows, rows), broadcast_strides(kept_rows, rows)};
  const int64_t last = rows.back(), so = st[1].back();
  const T* src = x.data<T>();
  for_each_row(rows, st, [&](int64_t, const std::vector<int64_t>& off) {
    const T* in = src + off[0];
    T* out = dst + off[1];
    for (int64_t i = 0; i < last; ++i) {
      T& acc = out[i * so];
      const T v = in[i];
      switch (kind) {
        // Unsigned arithmetic wraps where signed overflow would be undefined.
        case IntReduce::kSum: acc = static_cast<T>(static_cast<std::make_unsigned_t<T>>(acc) + static_cast<std::make_unsigned_t<T>>(v)); break;
        case IntReduce::kProd: acc = static_cast<T>(static_cast<std::make_unsigned_t<T>>(acc) * static_cast<std::make_unsigned_t<T>>(v)); break;
        case IntReduce::kMin: acc = std::min(acc, v); break;
        case IntReduce::kMax: acc = std::max(acc, v); break;
      }
    }
  });
}

class IntReduceOp : public NativeOp {
 public:
  IntReduceOp(const Node& node, int64_t opset, IntReduce kind, bool axes_input)
      : node_(node), opset_(opset), kind_(kind), axes_input_(axes_input) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    if (!x || x->numel() == 0 || (x->dtype() != DType::kInt64 && x->dtype() != DType::kInt32)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    std::vector<int64_t> axes;
    if (axes_input_) {
      if (const Tensor* a = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr) axes = a->to_int64_vector();
    } else {
      axes = node_.attr_ints("axes");
    }
    if (axes.empty() && node_.attr_int("noop_with_empty_axes", 0) != 0) return run_reference(node_, opset_, inputs, outputs);
    const int64_t rank = static_cast<int64_t>(x->rank());
    std::vector<bool> reduced(x->rank(), axes.empty());
    for (int64_t a : axes) {
      if (a < -rank || a >= rank) return run_reference(node_, opset_, inputs, outputs);  // it names the bad axis
      reduced[static_cast<size_t>(a < 0 ? a + rank : a)] = true;
    }
    const bool keepdims = node_.attr_int("keepdims", 1) != 0;
    Dims out_dims;
    for (size_t d = 0; d < x->rank(); ++d) {
      if (!reduced[d]) out_dims.push_back(x->dim(d));
      else if (keepdims) out_dims.push_back(1);
    }
    Tensor y = plain_output_tensor(x->dtype(), out_dims);
    if (x->dtype() == DType::kInt64) reduce_rows<int64_t>(kind_, *x, reduced, &y);
    else reduce_rows<int32_t>(kind_, *x, reduced, &y);
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  IntReduce kind_;
  bool axes_input_;
};

}  // namespace

std::unique_ptr<NativeOp> make_int_reduce_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  static const std::pair<const char*, IntReduce> kKinds[] = {
      {"ReduceSum", IntReduce::kSum}, {"ReduceProd", IntReduce::kProd}, {"ReduceMin", IntReduce::kMin}, {"ReduceMax", IntReduce::kMax}};
  for (const auto& [op, kind] : kKinds) {
    if (node.op_type != op) continue;
    // ReduceSum took its axes as an input from opset 13, the others from opset 18.
    const bool axes_input = kind == IntReduce::kSum ? opset >= 13 : opset >= 18;
    return std::make_unique<IntReduceOp>(node, opset, kind, axes_input);
  }
  return nullptr;
}

void register_int_reduce_ops(NativeOpTable& t) {
  for (const char* op : {"ReduceSum", "ReduceProd", "ReduceMin", "ReduceMax"}) {
    t.add({"", op, 1, kNativeAnyOpset, {DType::kInt64, DType::kInt32}, make_int_reduce_op});
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
