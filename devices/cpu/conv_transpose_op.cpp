// Native ConvTranspose (1-D, 2-D, 3-D; groups, dilations, strides, pads, auto_pad,
// output_padding, output_shape; optional bias) on oneDNN's deconvolution primitive.
// Mask R-CNN's mask head (2x2 stride 2, 256 -> 256 channels at 14x14) and Keypoint R-CNN's
// keypoint head (4x4 stride 2, pads 1) end in one; on the reference kernels (float64 GEMM and
// col2im) it was the only hot op of those models off the native path.
//
// The output size and pads follow the reference kernel (devices/ref/kernels/nn.cpp), so the two
// always agree on shapes; what oneDNN cannot express (a negative leading pad from an
// output_shape larger than the full output, say) runs on the reference kernel, counted as a
// fallback. Constant weights are packed once per input shape into the layout the kernel wants
// (exported to and imported from plan files like the convolution's); weights computed at run
// time are reordered on every run.
#include <algorithm>
#include <optional>

#include "devices/cpu/native_ops.h"
#include "graph/checked_math.h"
#include "devices/cpu/packed_dnnl.h"
#include "graph/logging.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// The output size and the pads of a ConvTranspose for input spatial dims `in`, as the
// reference kernel computes them; false when the attributes do not fit the rank.
struct Geometry {
  std::vector<int64_t> out, pad_l, pad_r, strides, dil;
};

// Any sum of a few of these stays inside int32, which oneDNN's kernels compute offsets in.
constexpr int64_t kMaxOneDnnExtent = int64_t{1} << 28;

bool transpose_geometry(const Node& node, const Dims& xd, const Dims& kernel, Geometry* g, std::string* why) {
  const size_t k = xd.size() - 2;
  g->strides = node.attr_ints("strides", std::vector<int64_t>(k, 1));
  g->dil = node.attr_ints("dilations", std::vector<int64_t>(k, 1));
  std::vector<int64_t> out_pad = node.attr_ints("output_padding", std::vector<int64_t>(k, 0));
  std::vector<int64_t> pads = node.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
  std::vector<int64_t> out_shape = node.attr_ints("output_shape");
  std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (g->strides.size() != k || g->dil.size() != k || out_pad.size() != k || pads.size() != 2 * k ||
      kernel.size() != k) {
    *why = "attributes do not match the spatial rank";
    return false;
  }
  if (out_shape.size() == k + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
  if (!out_shape.empty() && out_shape.size() != k) {
    *why = "output_shape does not match the spatial rank";
    return false;
  }
  g->out.assign(k, 0);
  g->pad_l.assign(k, 0);
  g->pad_r.assign(k, 0);
  for (size_t d = 0; d < k; ++d) {
    if (g->strides[d] <= 0 || g->dil[d] <= 0) {
      *why = "a stride or dilation is not positive";
      return false;
    }
    // Every term is the model's (dims, strides, dilations, pads, output_shape): checked, as
    // the reference kernel's are. Past int64 the node goes to the reference kernel, which
    // names the overflow (a stride of 2^62 overflowed here, UBSan in device_tests; an
    // output_padding of 2^63 - 1, kernel_run stop 16).
    const CheckedInt64 eff = (CheckedInt64(kernel[d]) - 1) * g->dil[d] + 1;
    const CheckedInt64 spread = CheckedInt64(g->strides[d]) * (CheckedInt64(xd[d + 2]) - 1);
    const CheckedInt64 full = spread + out_pad[d] + eff;
    CheckedInt64 pb = pads[d], pe = pads[d + k];
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const CheckedInt64 target = !out_shape.empty() ? CheckedInt64(out_shape[d]) : CheckedInt64(xd[d + 2]) * g->strides[d];
      const CheckedInt64 total = full - target;
      if (total.overflowed()) {
        *why = "the output size passes int64";
        return false;
      }
      pb = auto_pad != "SAME_LOWER" ? total.value() / 2 : total.value() - total.value() / 2;
      pe = total - pb;
    } else if (auto_pad == "VALID") {
      pb = pe = 0;
    }
    const CheckedInt64 out = full - pb - pe;
    // oneDNN reads the deconvolution as the backward pass of a convolution from the output to
    // the input: it needs (out - eff + pad_l + pad_r) / stride + 1 == in, pad_l >= 0 and
    // pad_r > -stride. The output size is explicit, so any pad_r that makes the division exact
    // describes the same computation: output padding and a negative trailing pad fold into it.
    const CheckedInt64 pad_r = spread + eff - pb - out;
    if (out.overflowed() || pad_r.overflowed()) {
      *why = "the output size or pads pass int64";
      return false;
    }
    g->out[d] = out.value();
    g->pad_l[d] = pb.value();
    g->pad_r[d] = pad_r.value();
    if (g->out[d] <= 0) {
      *why = "the output size is not positive";
      return false;
    }
    if (g->pad_l[d] < 0 || g->pad_r[d] <= -g->strides[d]) {
      *why = "pads outside what oneDNN's deconvolution takes (leading " + std::to_string(g->pad_l[d]) + ", trailing " +
             std::to_string(g->pad_r[d]) + ")";
      return false;
    }
    // oneDNN's kernels add these extents in int: a dilation of 2^31 (a 9-tap kernel spanning
    // 2^34, pads of 2^33) gave 11.84 where the reference gives 3.66 (kernel_run, stop 23).
    // Past kMaxOneDnnExtent, far beyond any real model's, the reference kernel runs it.
    for (int64_t extent : {eff.value(), spread.value(), g->pad_l[d], g->pad_r[d], g->out[d], g->strides[d], g->dil[d]}) {
      if (extent > kMaxOneDnnExtent || extent < -kMaxOneDnnExtent) {
        *why = "a kernel extent, pad, stride or output size past oneDNN's int arithmetic (" + std::to_string(extent) + ")";
        return false;
      }
    }
  }
  return true;
}

class ConvTransposeOp : public NativeOp {
 public:
  // `weights` undefined: they are an input computed at run time.
  ConvTransposeOp(const Node& node, int64_t opset, Tensor weights) : node_(node), opset_(opset), weights_(std::move(weights)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    const bool f32 = x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32);
    const Dims xd = x->has_native ? x->dims : (x->plain.is_tensor() ? x->plain.tensor.dims() : Dims{});
    const Tensor* w = weights_.defined() ? &weights_ : (inputs.size() > 1 ? plain_f32(inputs[1]) : nullptr);
    const Tensor* b = inputs.size() > 2 ? plain_f32(inputs[2]) : nullptr;
    const bool has_bias = inputs.size() > 2 && inputs[2];
    const int64_t group = node_.attr_int("group", 1);
    // Anything outside the native kernel (another dtype, shapes that do not fit) goes to the
    // reference kernel, which also words the error for an invalid node.
    if (!f32 || !w || (has_bias && !b) || xd.size() < 3 || xd.size() > 5 || w->rank() != xd.size() || group <= 0 ||
        w->dim(0) != xd[1] || xd[1] % group != 0 || (CheckedInt64(w->dim(1)) * group).overflowed() ||
        (b && b->numel() != w->dim(1) * group)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    Dims key = xd;
    if (!weights_.defined()) key.insert(key.end(), w->dims().begin(), w->dims().end());
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plans_.get_or_build(key, [&] { return build_plan(xd, *w, group, b != nullptr); }));
    if (!plan) return run_reference(node_, opset_, inputs, outputs);  // geometry oneDNN cannot take
    memory src = x->as_native(plan->src);
    memory weights = plan->weights;
    if (!weights) {  // run-time weights: into the kernel's layout for this run
      memory user(plan->user_weights, engine(), const_cast<void*>(w->raw_data()));
      weights = memory(plan->weights_desc, engine());
      dnnl::reorder(user, weights).execute(thread_stream(), user, weights);
    }
    CpuValue out = CpuValue::allocate_native(plan->dst, plan->out_dims);
    Scratchpad scratch(plan->scratch);
    std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights},
                                            {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
    if (b) {
      args[DNNL_ARG_BIAS] = memory(memory::desc({b->numel()}, memory::data_type::f32, memory::format_tag::x), engine(),
                                   const_cast<void*>(b->raw_data()));
    }
    plan->prim.execute(thread_stream(), args);
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::deconvolution_forward prim;
    memory::desc src, dst, scratch, weights_desc, user_weights;
    memory weights;  // packed constant weights; empty for run-time weights
    Dims out_dims;
    std::string impl;
    Tensor packed_keep;  // imported packed weights that `weights` views
  };

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
    const int64_t group = node_.attr_int("group", 1);
    if (!weights_.defined() || xd.size() != weights_.rank() || group <= 0 || xd[1] != weights_.dim(0) ||
        xd[1] % group != 0) {
      return node_.error(StatusCode::kInvalidArgument, "packed weights for input ", dims_to_string(xd),
                         " do not fit weights ", weights_.defined() ? weights_.summary() : std::string("computed at run time"));
    }
    const bool bias = node_.inputs.size() > 2 && !node_.inputs[2].empty();
    return plans_.get_or_build(xd, [&] { return build_plan(xd, weights_, group, bias); }).status();
  }

  std::string node_name() const { return node_.name.empty() ? node_.outputs[0] : node_.name; }

  // The plan for input `xd` and weights `w` [C, M/group, k...]; null (cached: the reference
  // kernel runs this shape) when oneDNN cannot express its geometry.
  Expected<std::shared_ptr<Plan>> build_plan(const Dims& xd, const Tensor& w, int64_t group, bool bias) {
    const size_t k = xd.size() - 2;
    Dims kernel(w.dims().begin() + 2, w.dims().end());
    if (node_.has_attr("kernel_shape") && node_.attr_ints("kernel_shape") != kernel) {
      note_fallback("kernel_shape " + dims_to_string(node_.attr_ints("kernel_shape")) + " differs from the weights' " +
                    dims_to_string(kernel));
      return std::shared_ptr<Plan>();
    }
    Geometry geo;
    std::string why;
    if (!transpose_geometry(node_, xd, kernel, &geo, &why)) {
      note_fallback(why);
      return std::shared_ptr<Plan>();
    }
    const int64_t C = xd[1], Mg = w.dim(1), M = Mg * group;
    auto plan = std::make_shared<Plan>();
    plan->out_dims = {xd[0], M};
    plan->out_dims.insert(plan->out_dims.end(), geo.out.begin(), geo.out.end());
    // oneDNN's weights are [O, I, k...] ([G, O/G, I/G, k...] grouped); ONNX stores them
    // input-channel first, [I, O/G, k...]: the same bytes under a permuted format.
    memory::dims wdims;
    memory::format_tag user_tag;
    if (group == 1) {
      wdims = {M, C};
      static const memory::format_tag tags[] = {memory::format_tag::bac, memory::format_tag::bacd, memory::format_tag::bacde};
      user_tag = tags[k - 1];
    } else {
      wdims = {group, Mg, C / group};
      static const memory::format_tag tags[] = {memory::format_tag::acbd, memory::format_tag::acbde,
                                                memory::format_tag::acbdef};
      user_tag = tags[k - 1];
    }
    wdims.insert(wdims.end(), kernel.begin(), kernel.end());
    plan->user_weights = memory::desc(wdims, memory::data_type::f32, user_tag);
    const auto any = memory::format_tag::any;
    memory::desc src_md(to_dnnl(xd), memory::data_type::f32, any);
    memory::desc w_md(wdims, memory::data_type::f32, any);
    memory::desc b_md({M}, memory::data_type::f32, memory::format_tag::x);
    memory::desc dst_md(to_dnnl(plan->out_dims), memory::data_type::f32, any);
    memory::dims strides(geo.strides.begin(), geo.strides.end()), pad_l(geo.pad_l.begin(), geo.pad_l.end()),
        pad_r(geo.pad_r.begin(), geo.pad_r.end()), dil(k);
    for (size_t d = 0; d < k; ++d) dil[d] = geo.dil[d] - 1;  // oneDNN counts the gaps, ONNX the step
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    try {
      auto desc = bias ? dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                           dnnl::algorithm::deconvolution_direct, src_md, w_md, b_md,
                                                           dst_md, strides, dil, pad_l, pad_r)
                       : dnnl::deconvolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                           dnnl::algorithm::deconvolution_direct, src_md, w_md, dst_md,
                                                           strides, dil, pad_l, pad_r);
      dnnl::deconvolution_forward::primitive_desc pd(desc, attr, engine());
      plan->prim = dnnl::deconvolution_forward(pd);
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      plan->scratch = pd.scratchpad_desc();
      plan->weights_desc = pd.weights_desc();
      plan->impl = pd.impl_info_str();
      if (weights_.defined()) pack_weights(*plan, xd);
    } catch (const dnnl::error& e) {
      note_fallback(std::string("oneDNN has no deconvolution for it: ") + e.what());
      return std::shared_ptr<Plan>();
    }
    return plan;
  }

  // The constant weights in the kernel's layout: imported packed bytes when they fit, else
  // reordered now (once per input shape).
  void pack_weights(Plan& plan, const Dims& xd) {
    std::lock_guard<std::mutex> lock(imported_mu_);
    if (auto w = take_dnnl_blob(imported_, node_name(), xd, plan.impl, plan.weights_desc)) {
      plan.weights = w->memory;
      plan.packed_keep = w->bytes;
      return;
    }
    memory user(plan.user_weights, engine(), const_cast<void*>(weights_.raw_data()));
    plan.weights = memory(plan.weights_desc, engine());
    dnnl::reorder(user, plan.weights).execute(thread_stream(), user, plan.weights);
    thread_stream().wait();
  }

  // A shape this kernel hands to the reference kernel: said once per node in the log.
  void note_fallback(const std::string& why) {
    if (!noted_fallback_) {
      noted_fallback_ = true;
      log_at(LogSeverity::kWarning, LogScope{}, "ConvTranspose '", node_name(), "' runs on the reference kernel: ", why);
    }
  }

  Node node_;
  int64_t opset_;
  Tensor weights_;
  ShapePlanCache<Plan> plans_;
  bool noted_fallback_ = false;  // written under plans_' lock (builders run under it)
  std::mutex imported_mu_;
  std::vector<PackedBlob> imported_;
};

}  // namespace

std::unique_ptr<NativeOp> make_conv_transpose_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.inputs.size() < 2 || node.inputs[1].empty()) return nullptr;
  Tensor weights;
  if (auto w = graph.initializers.find(node.inputs[1]); w != graph.initializers.end()) {
    if (w->second.dtype() != DType::kFloat32 || w->second.rank() < 3 || w->second.rank() > 5) return nullptr;
    weights = w->second;
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER") return nullptr;
  return std::make_unique<ConvTransposeOp>(node, opset, std::move(weights));
}

// Float ConvTranspose (every opset: 1 and 11 differ only in how output_shape sets the pads,
// which follows the reference kernel).
void register_conv_transpose_ops(NativeOpTable& t) {
  t.add({"", "ConvTranspose", 1, kNativeAnyOpset, {DType::kFloat32}, make_conv_transpose_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
