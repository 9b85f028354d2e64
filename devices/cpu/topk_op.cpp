// Native TopK on any axis, largest or smallest, for float, double, int64 and int32: each
// row along the axis is gathered once and partially sorted (O(n log k), not a full sort per
// row), rows split over the OpenMP team when there are many. Ties keep the lower index first,
// as ONNX specifies and the reference's stable sort does; NaN ranks above every number
// (largest: first; smallest: last), so the order is total. The output is always sorted (a
// `sorted` = 0 caller may take any order). A bad k or axis goes to the reference kernel,
// which names it.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Below this many input elements TopK runs on the calling thread alone.
constexpr int64_t kParallelMin = 1 << 15;

template <typename T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  return false;
}

template <typename T>
void topk_rows(const Tensor& x, int64_t outer, int64_t len, int64_t inner, int64_t k, bool largest, Tensor* values,
               Tensor* indices) {
  const T* src = x.data<T>();
  T* vals = values->data<T>();
  int64_t* idx = indices->data<int64_t>();
  auto one_row = [&](int64_t row, std::vector<T>& buf, std::vector<int64_t>& order) {
    const int64_t o = row / inner, i = row % inner;
    const T* base = src + o * len * inner + i;
    for (int64_t j = 0; j < len; ++j) buf[static_cast<size_t>(j)] = base[j * inner];
    std::iota(order.begin(), order.end(), 0);
    // "p before q": a strict total order, so partial_sort gives the stable order's first k.
    auto before = [&](int64_t p, int64_t q) {
      const T a = buf[static_cast<size_t>(p)], b = buf[static_cast<size_t>(q)];
      const bool na = is_nan(a), nb = is_nan(b);
      if (na || nb) {
        if (na && nb) return p < q;
        return largest ? na : nb;
      }
      if (a != b) return largest ? a > b : a < b;
      return p < q;
    };
    std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
    T* vrow = vals + o * k * inner + i;
    int64_t* irow = idx + o * k * inner + i;
    for (int64_t j = 0; j < k; ++j) {
      vrow[j * inner] = buf[static_cast<size_t>(order[static_cast<size_t>(j)])];
      irow[j * inner] = order[static_cast<size_t>(j)];
    }
  };
  const int64_t rows = outer * inner;
  if (x.numel() < kParallelMin || rows < 2 || omp_get_max_threads() == 1) {
    std::vector<T> buf(static_cast<size_t>(len));
    std::vector<int64_t> order(static_cast<size_t>(len));
    for (int64_t r = 0; r < rows; ++r) one_row(r, buf, order);
    return;
  }
#pragma omp parallel
  {
    std::vector<T> buf(static_cast<size_t>(len));
    std::vector<int64_t> order(static_cast<size_t>(len));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) one_row(r, buf, order);
  }
}

class TopKOp : public NativeOp {
 public:
  TopKOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_fixed(inputs[0]);
    if (!x) return run_reference(node_, opset_, inputs, outputs);
    int64_t k = -1;
    if (opset_ < 10) {
      k = node_.attr_int("k", 1);
    } else if (const Tensor* kt = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr; kt && kt->numel() == 1) {
      k = kt->value_as_int64(0);
    }
    const int64_t rank = static_cast<int64_t>(x->rank());
    int64_t axis = node_.attr_int("axis", -1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return run_reference(node_, opset_, inputs, outputs);
    const size_t ax = static_cast<size_t>(axis);
    const int64_t len = x->dim(ax);
    if (k < 0 || k > len) return run_reference(node_, opset_, inputs, outputs);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < ax; ++d) outer *= x->dim(d);
    for (size_t d = ax + 1; d < x->rank(); ++d) inner *= x->dim(d);
    Dims out_dims = x->dims();
    out_dims[ax] = k;
    Tensor values = plain_output_tensor(x->dtype(), out_dims);
    Tensor indices = plain_output_tensor(DType::kInt64, out_dims);
    const bool largest = node_.attr_int("largest", 1) != 0;
    if (k > 0 && outer * inner > 0) {
      switch (x->dtype()) {
        case DType::kFloat32: topk_rows<float>(*x, outer, len, inner, k, largest, &values, &indices); break;
        case DType::kFloat64: topk_rows<double>(*x, outer, len, inner, k, largest, &values, &indices); break;
        case DType::kInt64: topk_rows<int64_t>(*x, outer, len, inner, k, largest, &values, &indices); break;
        case DType::kInt32: topk_rows<int32_t>(*x, outer, len, inner, k, largest, &values, &indices); break;
        default: return run_reference(node_, opset_, inputs, outputs);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(values)));
    if (outputs.size() > 1) outputs[1] = CpuValue::from_plain(Value(std::move(indices)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_topk_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "TopK") return nullptr;
  return std::make_unique<TopKOp>(node, opset);
}

void register_topk_ops(NativeOpTable& t) {
  t.add({"", "TopK", 1, kNativeAnyOpset, {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kInt32}, make_topk_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
