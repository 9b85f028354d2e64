// Native QuantizeLinear / DequantizeLinear with per-tensor parameters (what the activations of
// a QDQ model carry): one oneDNN reorder with a scale and zero points, which converts any
// layout (blocked f32 from the convolutions, nhwc u8 from the int8 ones) in one pass. Per-axis
// parameters (weights: folded at compile time anyway) and int8 activations take the reference
// kernel. DequantizeLinear is the reorder's (x - zp) * scale exactly. QuantizeLinear is our own
// loop, saturate(round_half_even(x / scale) + zp) as ONNX and the reference define it: the
// reorder multiplies by 1/scale and adds the zero point before it rounds, so a tie with an odd
// zero point came out one higher (x / scale = -1.5, zp 3: 2 instead of 1; kernel_run, stop 22).
// A value in a native layout is first reordered, unscaled, into the output's layout as f32.
#include <cmath>

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

// ONNX's QuantizeLinear of one value to uint8 (the reference's quantize_values in float32).
inline uint8_t quantize_u8(float x, float scale, float zp) {
  const float q = std::nearbyint(x / scale) + zp;  // a sum of integers: exact below 2^24, saturated above
  if (!(q > 0.f)) return 0;  // NaN too
  if (q >= 255.f) return 255;
  return static_cast<uint8_t>(q);
}

void quantize_u8(const float* x, uint8_t* y, int64_t n, float scale, int32_t zp) {
  const float z = static_cast<float>(zp);
#pragma omp parallel for simd schedule(static) if (n >= (int64_t{1} << 16))
  for (int64_t i = 0; i < n; ++i) y[i] = quantize_u8(x[i], scale, z);
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
    if (quantize_) return quantize(src, x->has_native, out, outputs);
    auto prim = reorder_to(src.get_desc(), dst_md, /*scaled=*/true);
    if (!prim.ok()) return run_reference(node_, opset_, inputs, outputs);
    (*prim)->execute(thread_stream(), src, out.native);
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  // f32 `src` into the uint8 `out`: element by element when src is already in out's layout
  // (plain), else through an f32 copy in that layout (the same element order as out's).
  Status quantize(const memory& src, bool native, CpuValue& out, std::vector<CpuValue>& outputs) {
    const memory::desc& dst_md = out.native.get_desc();
    const int64_t n = static_cast<int64_t>(dst_md.get_size());  // u8: bytes are elements, gaps included
    auto* y = static_cast<uint8_t*>(out.native.get_data_handle());
    if (!native) {
      quantize_u8(static_cast<const float*>(src.get_data_handle()), y, n, scale_, zp_);
    } else {
      const memory::desc f32_md = retyped(dst_md, memory::data_type::f32);
      auto prim = reorder_to(src.get_desc(), f32_md, /*scaled=*/false);
      if (!prim.ok()) return prim.status();
      memory from = src, staged(f32_md, engine());
      (*prim)->execute(thread_stream(), from, staged);
      thread_stream().wait();
      quantize_u8(static_cast<const float*>(staged.get_data_handle()), y, n, scale_, zp_);
    }
    outputs[0] = std::move(out);
    return Status::OK();
  }

  // The reorder from `from` to `to`, with DequantizeLinear's scale and zero point when `scaled`.
  Expected<std::shared_ptr<const dnnl::reorder>> reorder_to(const memory::desc& from, const memory::desc& to,
                                                           bool scaled) {
    return prims_.get_or_build({from, to}, [&]() -> Expected<std::shared_ptr<dnnl::reorder>> {
      dnnl::primitive_attr attr;
      if (scaled) {
        attr.set_output_scales(0, {scale_});
        attr.set_zero_points(DNNL_ARG_SRC, 0, {zp_});
      }
      try {
        return std::make_shared<dnnl::reorder>(
            dnnl::reorder::primitive_desc(engine(), from, engine(), to, attr));
      } catch (const dnnl::error& e) {
        return runtime_error("oneDNN has no reorder for it: ", e.what());  // not cached: retried
      }
    });
  }

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
