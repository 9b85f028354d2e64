// Native QuantizeLinear / DequantizeLinear with per-tensor parameters (what the activations of
// a QDQ model carry): one oneDNN reorder with a scale and zero points, which converts any
// layout (blocked f32 from the convolutions, nhwc u8 from the int8 ones) in one pass. Per-axis
// parameters (weights: folded at compile time anyway) and int8 activations take the reference
// kernel. ONNX rounds half to even; so does the reorder (the default rounding mode).
#include "devices/cpu/int8_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// `d`'s layout with data type `dt` when it is a strided (non-blocked) layout; for blocked ones
// nhwc (4-D), or row-major.
memory::desc retyped(const memory::desc& d, memory::data_type dt) {
  const auto& blk = d.data.format_desc.blocking;
  memory::dims dims = d.dims();
  if (d.data.format_kind == dnnl_blocked && blk.inner_nblks == 0) {
    memory::dims strides(blk.strides, blk.strides + d.data.ndims);
    return memory::desc(dims, dt, strides);
  }
  if (dims.size() == 4) return memory::desc(dims, dt, memory::format_tag::nhwc);
  return memory::desc(dims, dt, plain_tag(dims.size()));
}

memory::data_type dnnl_type(DType t) {
  return t == DType::kUInt8 ? memory::data_type::u8 : t == DType::kInt8 ? memory::data_type::s8 : memory::data_type::f32;
}

class QdqOp : public NativeOp {
 public:
  QdqOp(const Node& node, int64_t opset, bool quantize, float scale, int32_t zp, memory::data_type qtype)
      : node_(node), opset_(opset), quantize_(quantize), scale_(scale), zp_(zp), qtype_(qtype) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    memory::data_type in_type = quantize_ ? memory::data_type::f32 : qtype_;
    memory src;
    Dims dims;
    if (x->has_native) {
      src = x->native;
      dims = x->dims;
    } else if (x->plain.is_tensor() && dnnl_type(x->plain.tensor.dtype()) == in_type &&
               (in_type != memory::data_type::f32 || x->plain.tensor.dtype() == DType::kFloat32)) {
      dims = x->plain.tensor.dims();
      Dims d = dims.empty() ? Dims{1} : dims;
      src = memory(memory::desc(to_dnnl(d), in_type, plain_tag(d.size())), engine(),
                   const_cast<void*>(x->plain.tensor.raw_data()));
    } else {
      return run_reference(node_, opset_, inputs, outputs);
    }
    if (src.get_desc().data_type() != in_type || dims.empty()) return run_reference(node_, opset_, inputs, outputs);
    memory::desc dst_md = retyped(src.get_desc(), quantize_ ? qtype_ : memory::data_type::f32);
    CpuValue out = CpuValue::allocate_native(dst_md, dims);
    auto prim = prims_.get_or_build({src.get_desc(), dst_md}, [&]() -> Expected<std::shared_ptr<dnnl::reorder>> {
      dnnl::primitive_attr attr;
      attr.set_output_scales(0, {quantize_ ? 1.f / scale_ : scale_});
      attr.set_zero_points(quantize_ ? DNNL_ARG_DST : DNNL_ARG_SRC, 0, {zp_});
      try {
        return std::make_shared<dnnl::reorder>(
            dnnl::reorder::primitive_desc(engine(), src.get_desc(), engine(), dst_md, attr));
      } catch (const dnnl::error& e) {
        return runtime_error("oneDNN has no reorder for it: ", e.what());  // not cached: retried
      }
    });
    if (!prim.ok()) return run_reference(node_, opset_, inputs, outputs);
    (*prim)->execute(thread_stream(), src, out.native);
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  bool quantize_;
  float scale_;
  int32_t zp_;
  memory::data_type qtype_;
  ShapePlanCache<dnnl::reorder, std::pair<memory::desc, memory::desc>> prims_;
};

}  // namespace

std::unique_ptr<NativeOp> make_qdq_op(const Node& node, int64_t opset, const Graph& graph) {
  bool quantize = node.op_type == "QuantizeLinear";
  if (node.inputs.size() < 3 || node.inputs[2].empty()) return nullptr;
  auto s = graph.initializers.find(node.inputs[1]);
  auto z = graph.initializers.find(node.inputs[2]);
  if (s == graph.initializers.end() || z == graph.initializers.end()) return nullptr;
  if (s->second.dtype() != DType::kFloat32 || s->second.numel() != 1 || z->second.numel() != 1) return nullptr;
  if (z->second.dtype() != DType::kUInt8) return nullptr;
  float scale = s->second.data<float>()[0];
  if (!(scale > 0)) return nullptr;
  return std::make_unique<QdqOp>(node, opset, quantize, scale, static_cast<int32_t>(z->second.value_as_int64(0)),
                                 memory::data_type::u8);
}

// Per-tensor uint8 (de)quantization: float in for QuantizeLinear, uint8 in for DequantizeLinear.
void register_qdq_ops(NativeOpTable& t) {
  t.add({"", "QuantizeLinear", 10, kNativeAnyOpset, {DType::kFloat32}, make_qdq_op});
  t.add({"", "DequantizeLinear", 10, kNativeAnyOpset, {DType::kUInt8}, make_qdq_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
