// Native comparisons (Greater, Less, Equal, GreaterOrEqual, LessOrEqual) and logic (And, Or,
// Xor on bool) with numpy broadcasting, bool output, on the numeric dtypes models compare (float, double, int64,
// int32, int8, uint8, bool for Equal): detection post-processing compares scores with a
// threshold once per class. Compared in the operands' own type (the reference goes through
// double, which rounds int64 above 2^53). Shapes that do not broadcast, mixed dtypes and
// the rest go to the reference kernel, which reports or handles them.
#include "devices/cpu/broadcast_rows.h"
#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

enum class Cmp { kGreater, kLess, kEqual, kGreaterOrEqual, kLessOrEqual, kAnd, kOr, kXor };

template <Cmp C, typename T>
inline bool compare(T a, T b) {
  if constexpr (C == Cmp::kGreater) return a > b;
  if constexpr (C == Cmp::kLess) return a < b;
  if constexpr (C == Cmp::kEqual) return a == b;
  if constexpr (C == Cmp::kGreaterOrEqual) return a >= b;
  if constexpr (C == Cmp::kLessOrEqual) return a <= b;
  if constexpr (C == Cmp::kAnd) return a && b;
  if constexpr (C == Cmp::kOr) return a || b;
  if constexpr (C == Cmp::kXor) return a != b;
  return false;
}

template <Cmp C, typename T>
void compare_rows(const Tensor& a, const Tensor& b, const Dims& out, Tensor* y) {
  std::vector<std::vector<int64_t>> st = {broadcast_strides(a.dims(), out), broadcast_strides(b.dims(), out)};
  const int64_t last = out.back(), sa = st[0].back(), sb = st[1].back();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  bool* dst = y->data<bool>();
  for_each_row(out, st, [&](int64_t r, const std::vector<int64_t>& off) {
    bool* row = dst + r * last;
    const T* ar = pa + off[0];
    const T* br = pb + off[1];
    if (sa == 1 && sb == 1) {
      for (int64_t i = 0; i < last; ++i) row[i] = compare<C>(ar[i], br[i]);
    } else if (sa == 1 && sb == 0) {
      const T v = br[0];
      for (int64_t i = 0; i < last; ++i) row[i] = compare<C>(ar[i], v);
    } else {
      for (int64_t i = 0; i < last; ++i) row[i] = compare<C>(ar[i * sa], br[i * sb]);
    }
  });
}

template <Cmp C>
bool compare_typed(const Tensor& a, const Tensor& b, const Dims& out, Tensor* y) {
  if constexpr (C == Cmp::kAnd || C == Cmp::kOr || C == Cmp::kXor) {  // logic: bool only
    if (a.dtype() != DType::kBool) return false;
    compare_rows<C, bool>(a, b, out, y);
    return true;
  }
  switch (a.dtype()) {
    case DType::kFloat32: compare_rows<C, float>(a, b, out, y); return true;
    case DType::kFloat64: compare_rows<C, double>(a, b, out, y); return true;
    case DType::kInt64: compare_rows<C, int64_t>(a, b, out, y); return true;
    case DType::kInt32: compare_rows<C, int32_t>(a, b, out, y); return true;
    case DType::kInt8: compare_rows<C, int8_t>(a, b, out, y); return true;
    case DType::kUInt8: compare_rows<C, uint8_t>(a, b, out, y); return true;
    case DType::kBool:
      if constexpr (C != Cmp::kEqual) return false;  // ordering bools is not in the spec
      compare_rows<C, bool>(a, b, out, y);
      return true;
    default: return false;
  }
}

class CompareOp : public NativeOp {
 public:
  CompareOp(const Node& node, int64_t opset, Cmp cmp) : node_(node), opset_(opset), cmp_(cmp) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* a = plain_fixed(inputs[0]);
    const Tensor* b = inputs.size() > 1 ? plain_fixed(inputs[1]) : nullptr;
    Dims out;
    if (!a || !b || a->dtype() != b->dtype() || !broadcast(a->dims(), b->dims(), &out)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    Dims rows = out.empty() ? Dims{1} : out;  // scalars: one row of one element
    Tensor y = plain_output_tensor(DType::kBool, out);
    bool done = true;
    if (y.numel() > 0) {
      switch (cmp_) {
        case Cmp::kGreater: done = compare_typed<Cmp::kGreater>(*a, *b, rows, &y); break;
        case Cmp::kLess: done = compare_typed<Cmp::kLess>(*a, *b, rows, &y); break;
        case Cmp::kEqual: done = compare_typed<Cmp::kEqual>(*a, *b, rows, &y); break;
        case Cmp::kGreaterOrEqual: done = compare_typed<Cmp::kGreaterOrEqual>(*a, *b, rows, &y); break;
        case Cmp::kLessOrEqual: done = compare_typed<Cmp::kLessOrEqual>(*a, *b, rows, &y); break;
        case Cmp::kAnd: done = compare_typed<Cmp::kAnd>(*a, *b, rows, &y); break;
        case Cmp::kOr: done = compare_typed<Cmp::kOr>(*a, *b, rows, &y); break;
        case Cmp::kXor: done = compare_typed<Cmp::kXor>(*a, *b, rows, &y); break;
      }
    }
    if (!done) return run_reference(node_, opset_, inputs, outputs);
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  Cmp cmp_;
};

const std::vector<DType>& compare_dtypes() {
  static const std::vector<DType> d = {DType::kFloat32, DType::kFloat64, DType::kInt64, DType::kInt32,
                                       DType::kInt8,    DType::kUInt8,   DType::kBool};
  return d;
}

}  // namespace

std::unique_ptr<NativeOp> make_compare_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  const std::string& op = node.op_type;
  Cmp cmp;
  if (op == "Greater") cmp = Cmp::kGreater;
  else if (op == "Less") cmp = Cmp::kLess;
  else if (op == "Equal") cmp = Cmp::kEqual;
  else if (op == "GreaterOrEqual") cmp = Cmp::kGreaterOrEqual;
  else if (op == "LessOrEqual") cmp = Cmp::kLessOrEqual;
  else if (op == "And") cmp = Cmp::kAnd;
  else if (op == "Or") cmp = Cmp::kOr;
  else if (op == "Xor") cmp = Cmp::kXor;
  else return nullptr;
  return std::make_unique<CompareOp>(node, opset, cmp);
}

void register_compare_ops(NativeOpTable& t) {
  // Opset 7 brought broadcasting (before: the `broadcast`/`axis` attributes, left to the
  // reference); GreaterOrEqual and LessOrEqual came with opset 12.
  for (const char* op : {"Greater", "Less", "Equal"}) t.add({"", op, 7, kNativeAnyOpset, compare_dtypes(), make_compare_op});
  for (const char* op : {"GreaterOrEqual", "LessOrEqual"}) {
    t.add({"", op, 12, kNativeAnyOpset, compare_dtypes(), make_compare_op});
  }
  for (const char* op : {"And", "Or", "Xor"}) t.add({"", op, 7, kNativeAnyOpset, {DType::kBool}, make_compare_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
