// Plain arithmetic with numpy broadcasting on the numeric dtypes the oneDNN kernels do not
// take: Add/Sub/Mul/Div on int64, int32 and double (detection heads compute box indices and
// sizes in int64), and variadic Max/Min/Sum (float, double, int64, int32; clamps of box
// coordinates), Mod (RetinaNet and FCOS compute anchor indices with it; Python-style remainder,
// or C's with fmod=1), Floor/Ceil on float and double, and Not on bool. Float Add/Sub/Mul/Div stay with eltwise_op, which hands over here the shapes
// oneDNN has no primitive for (scalars, 1-D, two-sided broadcasts). As the reference: integer
// division truncates and a zero divisor gives 0; Max/Min propagate NaN. Each pairwise step
// rounds to the element type (the reference folds floats in double, so a Sum of three or more
// floats may differ from it in the last bit). Mixed dtypes and shapes that do not broadcast go to the
// reference kernel, which names them.
#include "devices/cpu/arith_op.h"

#include <cmath>
#include <cstring>
#include <type_traits>

#include "devices/cpu/broadcast_rows.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

enum class Arith { kAdd, kSub, kMul, kDiv, kMax, kMin, kMod, kFmod };

bool arith_of(const std::string& op, Arith* out) {
  static const std::pair<const char*, Arith> kOps[] = {{"Add", Arith::kAdd}, {"Sub", Arith::kSub}, {"Mul", Arith::kMul},
                                                       {"Div", Arith::kDiv}, {"Max", Arith::kMax}, {"Min", Arith::kMin},
                                                       {"Sum", Arith::kAdd}, {"Mod", Arith::kMod}};
  for (const auto& [name, a] : kOps) {
    if (op == name) {
      *out = a;
      return true;
    }
  }
  return false;
}

template <typename T>
T apply(Arith op, T a, T b) {
  switch (op) {
    // Integers wrap, as the reference (wrapping_*: signed overflow is undefined; UBSan,
    // kernel_run: int64 MIN - 1); MIN / -1 is the wrapped negation and MIN % -1 is 0 (both trap).
    case Arith::kAdd: return wrapping_add(a, b);
    case Arith::kSub: return wrapping_sub(a, b);
    case Arith::kMul: return wrapping_mul(a, b);
    case Arith::kDiv:
      if constexpr (std::is_integral_v<T>) {
        if (b == 0) return T(0);
        if constexpr (std::is_signed_v<T>) { if (b == T(-1)) return wrapping_sub(T(0), a); }
        return static_cast<T>(a / b);
      } else {
        return a / b;
      }
    case Arith::kMax:
      if constexpr (std::is_floating_point_v<T>) if (std::isnan(a) || std::isnan(b)) return NAN;
      return a > b ? a : b;
    case Arith::kMin:
      if constexpr (std::is_floating_point_v<T>) if (std::isnan(a) || std::isnan(b)) return NAN;
      return a < b ? a : b;
    case Arith::kMod:  // Python's: the remainder takes the divisor's sign (integers only)
    case Arith::kFmod:  // C's: the dividend's sign
      if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(std::fmod(a, b));
      } else {
        if (b == 0) return T(0);  // as the reference
        if constexpr (std::is_signed_v<T>) { if (b == T(-1)) return T(0); }
        T r = static_cast<T>(a % b);
        if (op == Arith::kMod && r != 0 && ((r < 0) != (b < 0))) r = wrapping_add(r, b);
        return r;
      }
  }
  return a;
}

template <typename T>
void binary_rows(Arith op, const Tensor& a, const Tensor& b, const Dims& out, Tensor* y) {
  std::vector<std::vector<int64_t>> st = {broadcast_strides(a.dims(), out), broadcast_strides(b.dims(), out)};
  const int64_t last = out.back(), sa = st[0].back(), sb = st[1].back();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* dst = y->data<T>();
  for_each_row(out, st, [&](int64_t r, const std::vector<int64_t>& off) {
    T* row = dst + r * last;
    const T* ar = pa + off[0];
    const T* br = pb + off[1];
    for (int64_t i = 0; i < last; ++i) row[i] = apply<T>(op, ar[i * sa], br[i * sb]);
  });
}

// y = a op b; false when the dtype is not one this file computes.
bool binary_typed(Arith op, const Tensor& a, const Tensor& b, const Dims& out, Tensor* y) {
  if (y->numel() == 0) return true;
  const Dims rows = out.empty() ? Dims{1} : out;
  switch (a.dtype()) {
    case DType::kFloat32: binary_rows<float>(op, a, b, rows, y); return true;
    case DType::kFloat64: binary_rows<double>(op, a, b, rows, y); return true;
    case DType::kInt64: binary_rows<int64_t>(op, a, b, rows, y); return true;
    case DType::kInt32: binary_rows<int32_t>(op, a, b, rows, y); return true;
    default: return false;
  }
}

}  // namespace

Status plain_arith(const Node& node, int64_t opset, const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) {
  Arith op;
  std::vector<const Tensor*> xs;
  for (CpuValue* v : inputs) xs.push_back(plain_fixed(v));
  if (!arith_of(node.op_type, &op) || xs.empty() || (op != Arith::kMax && op != Arith::kMin && node.op_type != "Sum" && xs.size() != 2)) {
    return run_reference(node, opset, inputs, outputs);
  }
  if (op == Arith::kMod && node.attr_int("fmod", 0) != 0) op = Arith::kFmod;
  // A float Mod without fmod=1 is invalid: the reference names it.
  if (op == Arith::kMod && xs[0] && (xs[0]->dtype() == DType::kFloat32 || xs[0]->dtype() == DType::kFloat64)) {
    return run_reference(node, opset, inputs, outputs);
  }
  for (const Tensor* x : xs) {
    if (!x || x->dtype() != xs[0]->dtype()) return run_reference(node, opset, inputs, outputs);
  }
  // Folded pairwise, as the reference does: y = f(f(x0, x1), x2) ...
  Tensor acc = *xs[0];
  if (xs.size() == 1) {
    Tensor y = plain_output_tensor(acc.dtype(), acc.dims());
    std::memcpy(y.raw_data(), acc.raw_data(), acc.nbytes());
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }
  for (size_t k = 1; k < xs.size(); ++k) {
    Dims out;
    if (!broadcast(acc.dims(), xs[k]->dims(), &out)) return run_reference(node, opset, inputs, outputs);
    Tensor y = k + 1 == xs.size() ? plain_output_tensor(acc.dtype(), out) : Tensor(acc.dtype(), out);
    if (!binary_typed(op, acc, *xs[k], out, &y)) return run_reference(node, opset, inputs, outputs);
    acc = std::move(y);
  }
  outputs[0] = CpuValue::from_plain(Value(std::move(acc)));
  return Status::OK();
}

namespace {

// Floor and Ceil on float and double (oneDNN has no eltwise for them).
template <typename T>
void round_all(bool floor, const Tensor& x, Tensor* y) {
  const T* src = x.data<T>();
  T* dst = y->data<T>();
  for (int64_t i = 0; i < x.numel(); ++i) dst[i] = floor ? std::floor(src[i]) : std::ceil(src[i]);
}

class ArithOp : public NativeOp {
 public:
  ArithOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}
  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    if (node_.op_type == "Not") {
      const Tensor* x = plain_fixed(inputs[0]);
      if (!x || x->dtype() != DType::kBool) return run_reference(node_, opset_, inputs, outputs);
      Tensor y = plain_output_tensor(DType::kBool, x->dims());
      const bool* src = x->data<bool>();
      bool* dst = y.data<bool>();
      for (int64_t i = 0; i < x->numel(); ++i) dst[i] = !src[i];
      outputs[0] = CpuValue::from_plain(Value(std::move(y)));
      return Status::OK();
    }
    if (node_.op_type == "Floor" || node_.op_type == "Ceil") {
      const Tensor* x = plain_fixed(inputs[0]);
      if (!x || (x->dtype() != DType::kFloat32 && x->dtype() != DType::kFloat64)) return run_reference(node_, opset_, inputs, outputs);
      Tensor y = plain_output_tensor(x->dtype(), x->dims());
      if (x->dtype() == DType::kFloat32) round_all<float>(node_.op_type == "Floor", *x, &y);
      else round_all<double>(node_.op_type == "Floor", *x, &y);
      outputs[0] = CpuValue::from_plain(Value(std::move(y)));
      return Status::OK();
    }
    return plain_arith(node_, opset_, inputs, outputs);
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_arith_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  Arith op;
  if (!arith_of(node.op_type, &op) && node.op_type != "Floor" && node.op_type != "Ceil" && node.op_type != "Not") {
    return nullptr;
  }
  return std::make_unique<ArithOp>(node, opset);
}

void register_arith_ops(NativeOpTable& t) {
  // Float Add/Sub/Mul/Div are eltwise_op's (oneDNN); these are the other numeric types.
  const std::vector<DType> others = {DType::kFloat64, DType::kInt64, DType::kInt32};
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) t.add({"", op, 7, kNativeAnyOpset, others, make_arith_op});
  // Opset 8 brought broadcasting to the variadic ops.
  const std::vector<DType> all = {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kInt32};
  for (const char* op : {"Max", "Min", "Sum"}) t.add({"", op, 8, kNativeAnyOpset, all, make_arith_op});
  for (const char* op : {"Floor", "Ceil"}) t.add({"", op, 6, kNativeAnyOpset, {DType::kFloat32, DType::kFloat64}, make_arith_op});
  t.add({"", "Mod", 10, kNativeAnyOpset, all, make_arith_op});
  t.add({"", "Not", 1, kNativeAnyOpset, {DType::kBool}, make_arith_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
