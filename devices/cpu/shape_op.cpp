// Native Shape, ConstantOfShape and Range (below). Shape reads a value's dims without converting it: a
// blocked oneDNN value keeps its layout (the reference kernel needs it plain first).
// ConstantOfShape fills with the value's bytes (one element, any fixed-width dtype; float 0
// when absent). torchvision's detection heads run both once per class; a bad shape input
// goes to the reference kernel, which names it.
#include <cmath>
#include <cstring>

#include "devices/cpu/native_ops.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class ShapeOp : public NativeOp {
 public:
  ShapeOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    if (!inputs[0]) return run_reference(node_, opset_, inputs, outputs);
    const Dims* dims = nullptr;
    if (inputs[0]->has_native) {
      dims = &inputs[0]->dims;
    } else {
      const Value& v = inputs[0]->as_plain();
      if (!v.is_tensor()) return run_reference(node_, opset_, inputs, outputs);
      dims = &v.tensor.dims();
    }
    const int64_t rank = static_cast<int64_t>(dims->size());
    auto clamp = [&](int64_t v) { return std::min(std::max<int64_t>(v < 0 ? v + rank : v, 0), rank); };
    const int64_t start = clamp(node_.attr_int("start", 0));
    const int64_t end = node_.has_attr("end") ? clamp(node_.attr_int("end", rank)) : rank;
    const int64_t n = std::max<int64_t>(end - start, 0);
    Tensor y = plain_output_tensor(DType::kInt64, {n});
    for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = (*dims)[static_cast<size_t>(start + i)];
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

class ConstantOfShapeOp : public NativeOp {
 public:
  ConstantOfShapeOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* s = plain_fixed(inputs[0]);
    const Tensor* value = node_.attr_tensor("value");
    if (!s || s->rank() != 1 || (s->dtype() != DType::kInt64 && s->dtype() != DType::kInt32) ||
        (value && (value->numel() != 1 || value->dtype() == DType::kString))) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    Dims dims = s->to_int64_vector();
    for (int64_t d : dims) {
      if (d < 0) return run_reference(node_, opset_, inputs, outputs);
    }
    Tensor y = plain_output_tensor(value ? value->dtype() : DType::kFloat32, dims);
    const size_t es = dtype_size(y.dtype());
    char* dst = static_cast<char*>(y.raw_data());
    const int64_t n = y.numel();
    if (!value || std::all_of(static_cast<const char*>(value->raw_data()),
                              static_cast<const char*>(value->raw_data()) + es, [](char c) { return c == 0; })) {
      std::memset(dst, 0, static_cast<size_t>(n) * es);
    } else {
      for (int64_t i = 0; i < n; ++i) std::memcpy(dst + static_cast<size_t>(i) * es, value->raw_data(), es);
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

// Range for int64, int32, float and double: start + i * delta, as the reference computes it
// (integers in int64, floats in double); a bad delta or length goes to the reference kernel,
// which names it.
class RangeOp : public NativeOp {
 public:
  RangeOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* t[3];
    for (size_t i = 0; i < 3; ++i) {
      t[i] = inputs.size() > 2 ? plain_fixed(inputs[i]) : nullptr;
      if (!t[i] || t[i]->numel() != 1 || t[i]->dtype() != t[0]->dtype()) return run_reference(node_, opset_, inputs, outputs);
    }
    const DType dt = t[0]->dtype();
    if (dt != DType::kInt64 && dt != DType::kInt32 && dt != DType::kFloat32 && dt != DType::kFloat64) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const double s = t[0]->value_as_double(0), l = t[1]->value_as_double(0), d = t[2]->value_as_double(0);
    const double count = d == 0 ? NAN : std::ceil((l - s) / d);
    if (!std::isfinite(count) || count > static_cast<double>(int64_t{1} << 40)) return run_reference(node_, opset_, inputs, outputs);
    // Finite and at most 2^40, but possibly any negative number (-1e30): no elements.
    const int64_t n = count <= 0 ? 0 : static_cast<int64_t>(count);
    Tensor y = plain_output_tensor(dt, {n});
    if (dt == DType::kInt64 || dt == DType::kInt32) {
      const int64_t si = t[0]->value_as_int64(0), di = t[2]->value_as_int64(0);
      for (int64_t i = 0; i < n; ++i) {
        // Wraps like the reference (the count comes from doubles and may be one past exact).
        const int64_t v = wrapping_add(si, wrapping_mul(i, di));
        if (dt == DType::kInt64) y.data<int64_t>()[i] = v;
        else y.data<int32_t>()[i] = static_cast<int32_t>(v);
      }
    } else {
      for (int64_t i = 0; i < n; ++i) {
        const double v = s + static_cast<double>(i) * d;
        if (dt == DType::kFloat32) y.data<float>()[i] = static_cast<float>(v);
        else y.data<double>()[i] = v;
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_shape_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type == "Shape") return std::make_unique<ShapeOp>(node, opset);
  if (node.op_type == "ConstantOfShape") return std::make_unique<ConstantOfShapeOp>(node, opset);
  if (node.op_type == "Range") return std::make_unique<RangeOp>(node, opset);
  return nullptr;
}

void register_shape_ops(NativeOpTable& t) {
  std::vector<DType> any = fixed_width_dtypes();
  any.push_back(DType::kString);  // Shape reads only dims
  t.add({"", "Shape", 1, kNativeAnyOpset, any, make_shape_op});
  // Input 0 is the shape (int64); the output's dtype comes from `value`.
  t.add({"", "ConstantOfShape", 9, kNativeAnyOpset, {DType::kInt64, DType::kInt32}, make_shape_op});
  t.add({"", "Range", 11, kNativeAnyOpset, {DType::kInt64, DType::kInt32, DType::kFloat32, DType::kFloat64}, make_shape_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
