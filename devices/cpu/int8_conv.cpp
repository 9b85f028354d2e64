// Native int8 convolution: ONNX QLinearConv (made from QDQ groups by
// compiler/quantization/qdq_conv_fusion) on oneDNN's int8 convolution: u8 activations x s8
// weights, s32 accumulation, one output scale per channel (x_scale * w_scale[c] / y_scale) and
// the activations' zero points as oneDNN zero points, u8 out. oneDNN picks the kernel for the
// CPU it finds at run time (AMX, AVX-512 VNNI, AVX2 — dnnl::get_effective_cpu_isa()). Outputs
// stay in the kernel's layout (nhwc-like) so consecutive int8 convolutions pass them on without
// conversion; a reader that needs plain data gets a plain uint8 tensor (CpuValue::as_plain).
#include <algorithm>
#include <climits>
#include <cmath>

#include "devices/cpu/int8_ops.h"
#include "graph/checked_math.h"
#include "devices/cpu/packed_dnnl.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// A scalar constant input of the node, as double; false when it is absent or not constant.
bool scalar_const(const Graph& g, const Node& n, size_t i, double& out) {
  if (i >= n.inputs.size()) return false;
  auto it = g.initializers.find(n.inputs[i]);
  if (it == g.initializers.end() || it->second.numel() != 1) return false;
  out = it->second.value_as_double(0);
  return true;
}

class QLinearConvOp : public NativeOp {
 public:
  QLinearConvOp(const Node& node, int64_t opset, Tensor w, Tensor bias, std::vector<float> scales, int32_t x_zp,
                int32_t y_zp)
      : node_(node), opset_(opset), weights_(std::move(w)), bias_(std::move(bias)), scales_(std::move(scales)),
        x_zp_(x_zp), y_zp_(y_zp) {
    residual_ = node.domain == "pyflame_rt";  // pyflame_rt.QLinearConvAdd (qdq_residual_fusion.h)
    relu_ = fused_activation(node) == "Relu";
  }

  // The residual's quantization (z_scale / y_scale, z zero point) for the sum post-op.
  void set_residual(float sum_scale, int32_t sum_zp) {
    sum_scale_ = sum_scale;
    sum_zp_ = sum_zp;
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    bool u8 = x->has_native ? x->native.get_desc().data_type() == memory::data_type::u8
                            : x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kUInt8;
    Dims xd = x->has_native ? x->dims : (x->plain.is_tensor() ? x->plain.tensor.dims() : Dims{});
    int64_t group = node_.attr_int("group", 1);
    const CheckedInt64 in_c = CheckedInt64(weights_.dim(1)) * group;  // group is the model's
    bool shapes_ok = xd.size() == 4 && weights_.rank() == 4 && group > 0 && !in_c.overflowed() &&
                     xd[1] == in_c.value() && weights_.dim(0) % group == 0;
    if (!u8 || !shapes_ok) return fallback(inputs, outputs);
    auto plan = plan_for(xd, group);
    if (!plan.ok()) return fallback(inputs, outputs);  // no int8 kernel: logged once
    const Plan& p = **plan;
    CpuValue* z = residual_ ? inputs[11] : nullptr;
    if (z && !(z->has_native ? z->native.get_desc().data_type() == memory::data_type::u8 && z->dims == p.out_dims
                             : z->plain.is_tensor() && z->plain.tensor.dtype() == DType::kUInt8 &&
                                   z->plain.tensor.dims() == p.out_dims)) {
      return fallback(inputs, outputs);
    }
    memory src = x->has_native ? x->native
                               : memory(memory::desc(to_dnnl(xd), memory::data_type::u8, memory::format_tag::nchw),
                                        engine(), const_cast<void*>(x->plain.tensor.raw_data()));
    if (src.get_desc() != p.src) {
      memory converted(p.src, engine());
      dnnl::reorder(src, converted).execute(thread_stream(), src, converted);
      src = converted;
    }
    CpuValue out = CpuValue::allocate_native(p.dst, p.out_dims);
    if (z) {
      // The sum post-op adds what dst holds: the residual, in dst's layout.
      memory zm = z->has_native ? z->native
                                : memory(memory::desc(to_dnnl(p.out_dims), memory::data_type::u8, memory::format_tag::nchw),
                                         engine(), const_cast<void*>(z->plain.tensor.raw_data()));
      dnnl::reorder(zm, out.native).execute(thread_stream(), zm, out.native);
    }
    Scratchpad scratch(p.scratch);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, p.weights},
                                            {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
    if (x_zp_ != 0) args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC] = p.x_zp;
    if (y_zp_ != 0) args[DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_DST] = p.y_zp;
    if (bias_.defined()) args[DNNL_ARG_BIAS] = p.bias;
    p.prim.execute(thread_stream(), args);
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::convolution_forward prim;
    memory::desc src, dst, scratch;
    memory weights, bias, x_zp, y_zp;
    Dims out_dims;
    std::string impl;    // the primitive's kernel (what its packed weights are for)
    Tensor packed_keep;  // imported packed weights that `weights` views
  };

  // The s8 weights in the kernel's blocked layout, with what oneDNN appends to them (the
  // compensation for s8 activations or zero points): the whole weights memory is one blob.
  void export_packed(const std::string& node, std::vector<PackedBlob>* out) const override {
    plans_.for_each([&](const Dims& xd, const std::shared_ptr<const Plan>& plan) {
      if (plan && plan->weights) out->push_back(dnnl_blob(node, xd, plan->impl, plan->weights));
    });
  }
  void import_packed(std::vector<PackedBlob> blobs) override {
    std::lock_guard<std::mutex> lock(imported_mu_);
    imported_ = std::move(blobs);
  }
  Status prepare(const Dims& xd) override {
    int64_t group = node_.attr_int("group", 1);
    const CheckedInt64 in_c = CheckedInt64(weights_.dim(1)) * group;
    if (xd.size() != 4 || group <= 0 || in_c.overflowed() || xd[1] != in_c.value()) {
      return node_.error(StatusCode::kInvalidArgument, "packed weights for input ", dims_to_string(xd),
                         " do not fit weights ", weights_.summary());
    }
    return plan_for(xd, group).status();
  }

  std::string node_name() const { return node_.name.empty() ? node_.outputs[0] : node_.name; }

  Expected<std::shared_ptr<const Plan>> plan_for(const Dims& xd, int64_t group) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plans_.get_or_build(xd, [&]() -> std::shared_ptr<Plan> {
      auto built = build(xd, group);
      if (built.ok()) return *built;
      // Not silent: this node now runs the (slow) reference kernel for this input shape. The
      // null plan is cached: a failure is remembered, no rebuild per run.
      log_at(LogSeverity::kWarning, LogScope{}, "int8 convolution ", node_.describe(),
             " runs on the reference kernel: ", built.status().to_string());
      return nullptr;
    }));
    if (!plan) return node_.error(StatusCode::kNotImplemented, "no int8 convolution for this shape");
    return plan;
  }

  Expected<std::shared_ptr<Plan>> build(const Dims& xd, int64_t group) {
    std::vector<int64_t> strides = node_.attr_ints("strides", {1, 1});
    std::vector<int64_t> dil = node_.attr_ints("dilations", {1, 1});
    std::vector<int64_t> pads = node_.attr_ints("pads", {0, 0, 0, 0});
    std::string auto_pad = node_.attr_string("auto_pad", "NOTSET");
    if (strides.size() != 2 || dil.size() != 2 || pads.size() != 4 || auto_pad != "NOTSET") {
      return node_.error(StatusCode::kNotImplemented, "int8 convolution takes explicit 2-D pads only");
    }
    Dims out = {xd[0], weights_.dim(0)};
    memory::dims pad_l(2), pad_r(2), dnnl_dil(2);
    for (size_t d = 0; d < 2; ++d) {
      int64_t eff = (weights_.dim(d + 2) - 1) * dil[d] + 1;
      int64_t span = xd[d + 2] + pads[d] + pads[d + 2] - eff;
      if (span < 0 || strides[d] <= 0) return node_.error(StatusCode::kInvalidArgument, "kernel exceeds input");
      out.push_back(span / strides[d] + 1);
      pad_l[d] = pads[d];
      pad_r[d] = pads[d + 2];
      dnnl_dil[d] = dil[d] - 1;
    }
    Dims wdims = weights_.dims();
    if (group > 1) {
      wdims = {group, weights_.dim(0) / group};
      wdims.insert(wdims.end(), weights_.dims().begin() + 1, weights_.dims().end());
    }
    auto any = memory::format_tag::any;
    memory::desc src_md(to_dnnl(xd), memory::data_type::u8, any);
    memory::desc w_md(to_dnnl(wdims), memory::data_type::s8, any);
    memory::desc b_md({weights_.dim(0)}, memory::data_type::s32, memory::format_tag::x);
    memory::desc dst_md(to_dnnl(out), memory::data_type::u8, any);
    memory::dims strides_d(strides.begin(), strides.end());
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    attr.set_output_scales(scales_.size() > 1 ? 1 << 1 : 0, scales_);
    // Zero points only where they are not 0 (activations after a ReLU/ReLU6 have 0): with one
    // set, oneDNN runs its compensation code (the AVX2 depthwise kernel then is slower than fp32).
    if (x_zp_ != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
    if (y_zp_ != 0) attr.set_zero_points(DNNL_ARG_DST, 0, {DNNL_RUNTIME_S32_VAL});
    if (residual_) {
      dnnl::post_ops ops;
      ops.append_sum(sum_scale_, sum_zp_, memory::data_type::u8);
      if (relu_) ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(ops);
    }
    auto plan = std::make_shared<Plan>();
    plan->out_dims = out;
    try {
      auto desc = bias_.defined()
                      ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, src_md, w_md, b_md,
                                                        dst_md, strides_d, dnnl_dil, pad_l, pad_r)
                      : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                        dnnl::algorithm::convolution_direct, src_md, w_md, dst_md,
                                                        strides_d, dnnl_dil, pad_l, pad_r);
      dnnl::convolution_forward::primitive_desc pd(desc, attr, engine());
      // A reference int8 kernel would be far slower than fp32: not worth it.
      std::string impl = pd.impl_info_str();
      if (impl.find("ref") != std::string::npos) {
        return node_.error(StatusCode::kNotImplemented, "oneDNN has only a reference int8 kernel (", impl, ")");
      }
      plan->prim = dnnl::convolution_forward(pd);
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->scratch = pd.scratchpad_desc();
      plan->impl = impl;
      std::unique_lock<std::mutex> lock(imported_mu_);
      if (auto w = take_dnnl_blob(imported_, node_name(), xd, impl, pd.weights_desc())) {
        plan->weights = w->memory;
        plan->packed_keep = w->bytes;
      } else {
        lock.unlock();
        memory user_w(memory::desc(to_dnnl(wdims), memory::data_type::s8, plain_tag(wdims.size())), engine(),
                      const_cast<void*>(weights_.raw_data()));
        plan->weights = memory(pd.weights_desc(), engine());
        dnnl::reorder(user_w, plan->weights).execute(thread_stream(), user_w, plan->weights);
      }
      if (bias_.defined()) plan->bias = memory(b_md, engine(), const_cast<void*>(bias_.raw_data()));
      memory::desc zp_md({1}, memory::data_type::s32, memory::format_tag::x);
      plan->x_zp = memory(zp_md, engine());
      plan->y_zp = memory(zp_md, engine());
      *static_cast<int32_t*>(plan->x_zp.get_data_handle()) = x_zp_;
      *static_cast<int32_t*>(plan->y_zp.get_data_handle()) = y_zp_;
      thread_stream().wait();
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kNotImplemented, "oneDNN has no int8 convolution for it: ", e.what());
    }
    return plan;
  }

  // The reference kernel (QLinearConvAdd's does the residual in plain loops).
  Status fallback(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) {
    return run_reference(node_, opset_, inputs, outputs);
  }

  Node node_;
  int64_t opset_;
  Tensor weights_, bias_;
  std::vector<float> scales_;
  int32_t x_zp_, y_zp_;
  bool residual_ = false, relu_ = false;
  float sum_scale_ = 1.f;
  int32_t sum_zp_ = 0;
  ShapePlanCache<Plan> plans_;
  std::mutex imported_mu_;
  std::vector<PackedBlob> imported_;  // from a plan file (import_packed)
};

std::unique_ptr<NativeOp> make_op(const Node& node, int64_t opset, const Graph& graph);

}  // namespace

std::unique_ptr<NativeOp> make_qlinear_conv_op(const Node& node, int64_t opset, const Graph& graph) {
  auto op = make_op(node, opset, graph);
  if (!op || node.domain != "pyflame_rt") return op;
  double ys, zs, zz;
  if (node.inputs.size() < 14 || !scalar_const(graph, node, 6, ys) || !scalar_const(graph, node, 12, zs) ||
      !scalar_const(graph, node, 13, zz)) {
    return nullptr;
  }
  static_cast<QLinearConvOp*>(op.get())->set_residual(static_cast<float>(zs / ys), static_cast<int32_t>(zz));
  return op;
}

// u8 activations only (s8 weights): oneDNN's int8 convolution (QLinearConv is opset 10+).
void register_qlinear_conv_ops(NativeOpTable& t) {
  t.add({"", "QLinearConv", 10, kNativeAnyOpset, {DType::kUInt8}, make_qlinear_conv_op});
  t.add({"pyflame_rt", "QLinearConvAdd", 1, kNativeAnyOpset, {DType::kUInt8}, make_qlinear_conv_op});
}

namespace {

// Without padding every output reads only real inputs, so the activations' zero point is a
// constant per output channel: sum_k w[c,k] * (x[k] - zp) = sum_k w[c,k] * x[k] - zp * sum_k
// w[c,k]. Folded into the int32 bias (exact), the convolution runs without oneDNN's zero-point
// compensation, which costs a 1x1 convolution ~25% on AVX2 (MobileNetV2's expansions read the
// linear bottlenecks' outputs, zero point ~128). With padding, the border would read zp as 0:
// the zero point stays. Sets `x_zp` to 0 when folded.
void fold_zero_point(const Node& node, const Tensor& weights, Tensor& bias, int32_t& x_zp) {
  std::vector<int64_t> pads = node.attr_ints("pads", {0, 0, 0, 0});
  std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return;
  if (auto_pad == "NOTSET" && std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; })) return;
  const int64_t m = weights.dim(0), per = weights.numel() / m;
  if (bias.defined() && bias.numel() != m) return;
  std::vector<int64_t> folded(static_cast<size_t>(m));
  for (int64_t c = 0; c < m; ++c) {
    int64_t sum = 0;
    const int8_t* row = weights.data<int8_t>() + c * per;
    for (int64_t k = 0; k < per; ++k) sum += row[k];
    folded[c] = (bias.defined() ? bias.data<int32_t>()[c] : 0) - static_cast<int64_t>(x_zp) * sum;
    if (folded[c] > INT32_MAX || folded[c] < INT32_MIN) return;  // would not fit the s32 bias
  }
  Tensor out(DType::kInt32, {m});
  for (int64_t c = 0; c < m; ++c) out.data<int32_t>()[c] = static_cast<int32_t>(folded[c]);
  bias = std::move(out);
  x_zp = 0;
}

std::unique_ptr<NativeOp> make_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.inputs.size() < 8) return nullptr;
  double xs, xz, ys, yz;
  if (!scalar_const(graph, node, 1, xs) || !scalar_const(graph, node, 2, xz) || !scalar_const(graph, node, 6, ys) ||
      !scalar_const(graph, node, 7, yz)) {
    return nullptr;
  }
  auto find = [&](size_t i) -> const Tensor* {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    auto it = graph.initializers.find(node.inputs[i]);
    return it == graph.initializers.end() ? nullptr : &it->second;
  };
  const Tensor* w = find(3);
  const Tensor* ws = find(4);
  const Tensor* wz = find(5);
  const Tensor* b = find(8);
  if (!w || w->dtype() != DType::kInt8 || w->rank() != 4 || !ws || ws->dtype() != DType::kFloat32 || !wz) return nullptr;
  if (graph.initializers.at(node.inputs[2]).dtype() != DType::kUInt8 ||
      graph.initializers.at(node.inputs[7]).dtype() != DType::kUInt8) {
    return nullptr;  // int8 activations: the reference kernel
  }
  for (int64_t k = 0; k < wz->numel(); ++k) if (wz->value_as_int64(k) != 0) return nullptr;
  if (node.inputs.size() > 8 && !node.inputs[8].empty() && (!b || b->dtype() != DType::kInt32)) return nullptr;
  int64_t m = w->dim(0);
  if (ws->numel() != 1 && ws->numel() != m) return nullptr;
  std::vector<float> scales(static_cast<size_t>(ws->numel()));
  for (size_t c = 0; c < scales.size(); ++c) scales[c] = static_cast<float>(xs * ws->data<float>()[c] / ys);
  Tensor weights = *w;
  Tensor bias = b ? *b : Tensor();
  // A depthwise convolution (one input channel per group) has no pairs to sum: oneDNN's AVX2
  // kernel multiplies in int32 (vpmaddwd on zero-extended inputs), full 8-bit weights are safe.
  const int64_t group = node.attr_int("group", 1);
  const bool depthwise = group > 1 && w->dim(1) == 1 && m == group;
  if (!has_vnni() && !depthwise) {
    // Without VNNI the u8 x s8 products are summed in pairs into saturating int16
    // (vpmaddubsw): 2 * 255 * 127 overflows. Weights with 7 bits (halved, twice the scale)
    // cannot overflow; the int32 bias is re-expressed in the doubled accumulator scale.
    bool halve = false;
    for (int64_t k = 0; k < w->numel(); ++k) halve |= w->data<int8_t>()[k] > 63 || w->data<int8_t>()[k] < -64;
    if (halve) {
      weights = w->clone();
      int8_t* q = weights.data<int8_t>();
      for (int64_t k = 0; k < weights.numel(); ++k) q[k] = static_cast<int8_t>(std::nearbyint(q[k] / 2.0f));
      for (float& sc : scales) sc *= 2.f;
      if (b) {
        bias = b->clone();
        for (int64_t k = 0; k < bias.numel(); ++k) {
          bias.data<int32_t>()[k] = static_cast<int32_t>(std::nearbyint(bias.data<int32_t>()[k] / 2.0));
        }
      }
    }
  }
  int32_t x_zp = static_cast<int32_t>(xz);
  if (x_zp != 0) fold_zero_point(node, weights, bias, x_zp);
  return std::make_unique<QLinearConvOp>(node, opset, std::move(weights), std::move(bias), std::move(scales), x_zp,
                                         static_cast<int32_t>(yz));
}

}  // namespace

}  // namespace cpu
}  // namespace pyflame_rt
