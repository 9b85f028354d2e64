// Native convolution (Conv and the fused pyflame_rt.FusedConv): a oneDNN convolution with the
// bias, a residual sum and an activation applied as post-ops in one pass over the output.
// Weights are reordered once per input shape into the layout the chosen kernel wants; the
// source and destination layouts are oneDNN's choice ("any"), so consecutive convolutions
// pass blocked tensors to each other without converting back to NCHW.
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <tuple>

#include "devices/cpu/conv_blocks.h"
#include "devices/cpu/gemm_conv.h"
#include "graph/checked_math.h"
#include "devices/cpu/half_weights.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/output_destination.h"
#include "devices/cpu/packed_dnnl.h"
#include "devices/cpu/thread_scratch.h"
#include "devices/cpu/vector_math.h"
#include "devices/cpu/winograd_conv.h"
#include "devices/weight_stand_in.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// True when `v` is an f32 tensor of exactly `dims`.
bool f32_dims(const CpuValue* v, const Dims& dims) {
  if (v->has_native) return v->dims == dims;
  return v->plain.is_tensor() && v->plain.tensor.dtype() == DType::kFloat32 && v->plain.tensor.dims() == dims;
}

// bf16 compute pays when a convolution does enough arithmetic per input element to cover
// converting its f32 input to bf16 (MobileNetV2 bf16 on AMX, 1 thread, interleaved with fp32:
// every layer bf16 1.21x the fp32 time, only layers with at least 128 multiply-adds per input
// element 0.94x; docs/performance.md). ResNet-50's 1x1 reductions (64) then compute in f32
// too, at no measurable cost (0.386x the fp32 time vs 0.376x with every layer bf16).
constexpr double kBf16MinMacs = 128;

// A fused SiLU as oneDNN's swish post-op (applied in registers as the kernel writes its output)
// or as our pass over the output afterwards (vector_math silu_inplace). Our pass wins on both
// ISAs: on AVX2 EfficientNet-B0 took 0.87x the time; on AVX-512, once the pass had its own
// 16-lane kernel (stop 18), EfficientNet-B0's sum of per-node minima went from 11.28 to 10.04 ms
// at 1 thread (the post-op divides; ours refines a reciprocal; docs/performance.md).
// PFRT_CONV_SILU=postop or =pass overrides the choice (for A/B runs).
// Read when each convolution is made (tests cover both forms in one process).
bool silu_as_post_op() {
  const char* v = std::getenv("PFRT_CONV_SILU");
  return v && std::string(v) == "postop";
}

class ConvOp : public NativeOp {
 public:
  ConvOp(const Node& node, int64_t opset, Tensor weights, Tensor bias)
      : node_(node), opset_(opset), weights_(std::move(weights)), bias_(std::move(bias)) {
    fused_ = node.domain == "pyflame_rt";
    activation_ = fused_activation(node);
    activation_params_ = fused_activation_params(node);
    src_layout_ = node.attr_string("pyflame_rt_src_layout", "");
    dst_layout_ = node.attr_string("pyflame_rt_dst_layout", "");
    silu_after_ = activation_ == "SiLU" && !silu_as_post_op();
    has_sum_ = fused_ && node.inputs.size() > 3 && !node.inputs[3].empty();
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    bool f32 = x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32);
    Dims xd = x->has_native ? x->dims : (x->plain.is_tensor() ? x->plain.tensor.dims() : Dims{});
    int64_t group = node_.attr_int("group", 1);
    const CheckedInt64 in_c = CheckedInt64(weights_.dim(1)) * group;  // group is the model's
    bool shapes_ok = xd.size() == weights_.rank() && xd.size() >= 3 && group > 0 && !in_c.overflowed() &&
                     xd[1] == in_c.value() && weights_.dim(0) % group == 0;
    if (!f32 || !shapes_ok) return run_reference(node_, opset_, inputs, outputs);  // ref explains errors
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(xd, group));
    if (has_sum_ && (!inputs[3] || !f32_dims(inputs[3], plan->out_dims))) {
      return run_reference(node_, opset_, inputs, outputs);  // a residual of another shape
    }
    memory src = x->as_native(plan->src);
    if (plan->winograd) {
      CpuValue out = CpuValue::allocate_native(plan->dst, plan->out_dims);
      plan->winograd->run(static_cast<const float*>(src.get_data_handle()),
                          static_cast<float*>(out.native.get_data_handle()), plan->geometry);
      outputs[0] = std::move(out);
      return Status::OK();
    }
    CpuValue out;
    CpuValue* residual = has_sum_ ? inputs[3] : nullptr;
    if (residual && residual->last_use && residual->has_native && residual->native.get_desc() == plan->dst &&
        residual != x && !OutputDestination::pending()) {  // a bound output (IOBinding) gets the sum instead
      // The sum post-op adds what dst holds: sum into the residual itself (sharing its buffer).
      out = CpuValue::from_native(residual->native, plan->out_dims, residual->buffer);
    } else {
      out = CpuValue::allocate_native(plan->dst, plan->out_dims);
      if (residual) {
        memory zm = residual->as_native(plan->dst);
        dnnl::reorder(zm, out.native).execute(thread_stream(), zm, out.native);
      }
    }
    memory dst = out.native;
    if (plan->gemm) {
      thread_stream().wait();  // the residual's reorder into dst, if any
      plan->gemm->run(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(dst.get_data_handle()),
                      plan->gemm_geometry, residual != nullptr);
    } else if (!plan->blocks.empty()) {
      run_blocks(*plan, src, dst);
    } else {
      Scratchpad scratch(plan->scratch);
      // Half weights on an f32 kernel: this layer's packed weights expanded for this run.
      memory weights = plan->half ? plan->half->expand() : plan->weights;
      std::unordered_map<int, memory> args = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights},
                                              {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
      if (bias_.defined()) args[DNNL_ARG_BIAS] = plan->bias;
      plan->prim.execute(thread_stream(), args);
    }
    if (plan->prelu) plan->prelu->execute(dst);
    thread_stream().wait();
    // SiLU as our own pass over the output rather than oneDNN's swish post-op: EfficientNet-B0
    // 0.87x the time (vector_math.h). A blocked layout's padding channels hold 0 = silu(0).
    if (silu_after_) {
      silu_inplace_parallel(static_cast<float*>(dst.get_data_handle()),
                            static_cast<int64_t>(dst.get_desc().get_size() / sizeof(float)));
    }
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  // One block of output channels or rows (conv_blocks.h): its own primitive, made for one
  // thread, on a range of the whole convolution's source and destination buffers.
  struct Block {
    dnnl::convolution_forward prim;
    memory::desc src, dst, scratch;
    memory weights, bias;
    size_t src_offset = 0, dst_offset = 0;  // bytes into the whole source / destination
  };

  struct Plan {
    // Set: these instead of prim. Blocks of channels hold their own slices of the weights
    // (`weights` empty, nothing exported); blocks of rows share `weights`.
    std::vector<Block> blocks;
    dnnl::convolution_forward prim;
    memory::desc src, dst, scratch;
    memory weights, bias;
    std::optional<PReluStep> prelu;
    std::shared_ptr<const WinogradConv> winograd;  // set: our Winograd instead of prim
    std::shared_ptr<const GemmConv> gemm;           // set: our panel product instead of prim
    GemmConv::Geometry gemm_geometry{};
    WinogradConv::Geometry geometry{};
    Dims out_dims;
    std::string impl;    // the primitive's kernel (what its packed weights are for)
    Tensor packed_keep;  // imported packed weights that `weights` views
    std::shared_ptr<const HalfPacked> half;  // set (and `weights` empty): f32 kernel, half weights
  };

  void export_packed(const std::string& node, std::vector<PackedBlob>* out) const override {
    plans_.for_each([&](const Dims& xd, const std::shared_ptr<const Plan>& plan) {
      if (!plan) return;
      if (plan->winograd) {
        out->push_back({node, xd, "winograd", WinogradConv::kPackedImpl, "", plan->winograd->packed_bytes()});
      } else if (plan->weights) {
        out->push_back(dnnl_blob(node, xd, plan->impl, plan->weights));
      } else if (plan->half) {
        out->push_back(dnnl_blob(node, xd, plan->impl, plan->half->expand_copy()));  // plan files hold f32
      }
    });
  }
  void import_packed(std::vector<PackedBlob> blobs) override {
    std::lock_guard<std::mutex> lock(imported_mu_);
    imported_ = std::move(blobs);
  }
  Status prepare(const Dims& xd) override {
    int64_t group = node_.attr_int("group", 1);
    const CheckedInt64 in_c = CheckedInt64(weights_.dim(1)) * group;
    if (xd.size() != weights_.rank() || group <= 0 || in_c.overflowed() || xd[1] != in_c.value()) {
      return node_.error(StatusCode::kInvalidArgument, "packed weights for input ", dims_to_string(xd),
                         " do not fit weights ", weights_.summary());
    }
    return plan_for(xd, group).status();
  }

  // The primitive's weights: imported packed bytes when they fit it, else `user_w` reordered.
  // An f32 kernel on half weights keeps them half (plan.half; half_weights.h): `user_w` is
  // then the half weights described as f32, converted on the way.
  void pack_weights(Plan& plan, const dnnl::convolution_forward::primitive_desc& pd, const Dims& xd,
                    memory& user_w) {
    plan.impl = pd.impl_info_str();
    const bool half = is_half(weights_.dtype()) && pd.weights_desc().data_type() == memory::data_type::f32;
    std::lock_guard<std::mutex> lock(imported_mu_);
    if (auto w = take_dnnl_blob(imported_, node_name(), xd, plan.impl, pd.weights_desc())) {
      if (half) {
        plan.half = std::make_shared<const HalfPacked>(w->memory, weights_.dtype());
        return;
      }
      plan.weights = w->memory;
      plan.packed_keep = w->bytes;
      return;
    }
    if (half) {
      plan.half = pack_half_for_f32(user_w.get_data_handle(), weights_.dtype(), user_w.get_desc(), pd.weights_desc());
      return;
    }
    plan.weights = memory(pd.weights_desc(), engine());
    dnnl::reorder(user_w, plan.weights).execute(thread_stream(), user_w, plan.weights);
  }

  // Our Winograd for input `xd`: its transformed weights imported when they fit, else made.
  // `block`: the variant's channel block (WinogradConv); the packed bytes are the same for both.
  std::shared_ptr<const WinogradConv> own_winograd_for(const Dims& xd, int block) {
    bool relu = activation_ == "Relu";
    std::lock_guard<std::mutex> lock(imported_mu_);
    for (const auto& b : imported_) {
      if (b.key != xd || b.kind != "winograd") continue;
      if (b.impl != WinogradConv::kPackedImpl) {  // transformed on other points (an older plan file)
        note_stale_packed(node_name(), "Winograd weights packed for " + b.impl + ", this runtime's are " +
                                           WinogradConv::kPackedImpl);
        continue;
      }
      if (auto w = WinogradConv::from_packed(b.data, weights_.dim(1), weights_.dim(0), bias_, relu, weights_.dtype(),
                                             block)) {
        note_used_packed();
        return w;
      }
      note_stale_packed(node_name(), "Winograd weights of " + std::to_string(b.data.nbytes()) + " bytes do not fit " +
                                         weights_.summary());
    }
    if (!is_half(weights_.dtype())) {
      return std::make_shared<const WinogradConv>(weights_, bias_, relu, DType::kFloat32, block);
    }
    // Half weights: their f32 form only while transforming, in a transient mapping (half_weights.h).
    auto wf = std::make_shared<MappedFloats>(static_cast<size_t>(weights_.numel()));
    half_to_float(static_cast<const uint16_t*>(weights_.raw_data()), wf->data(), weights_.numel(), weights_.dtype());
    Tensor f32 = Tensor::wrap(DType::kFloat32, weights_.dims(), wf->data(), wf);
    return std::make_shared<const WinogradConv>(f32, bias_, relu, weights_.dtype(), block);
  }

  std::string node_name() const { return node_.name.empty() ? node_.outputs[0] : node_.name; }

  Expected<std::shared_ptr<const Plan>> plan_for(const Dims& xd, int64_t group) {
    return plans_.get_or_build(xd, [&]() -> Expected<std::shared_ptr<Plan>> {
      // Depthwise convolutions stay f32 (their weights are a few KiB): oneDNN 2.6's bf16
      // depthwise kernel (brdgmm_dw) took 19x the f32 one's time in MobileNetV2 here, and the
      // conversions around it cost more than the bf16 arithmetic saves.
      const bool depthwise = group > 1 && group == xd[1] && weights_.dim(0) == group;
      memory::data_type cdt = depthwise ? memory::data_type::f32 : compute_type(weights_.dtype());
      if (cdt == memory::data_type::bf16 && bf16_macs_per_input(xd, group) < bf16_min_macs_) {
        // Too little arithmetic per input element for bf16 to pay for converting the f32 input
        // (MobileNetV2's narrow projections): f32 from the bf16 packed weights instead.
        cdt = memory::data_type::f32;
      }
      Expected<std::shared_ptr<Plan>> plan = build_plan(xd, group, cdt);
      if (!plan.ok() && cdt != memory::data_type::f32) {
        // No bf16 kernel at all for this convolution: f32 with the weights converted.
        note_bf16_declined(node_, plan.status().message());
        plan = build_plan(xd, group, memory::data_type::f32);
      }
      return plan;
    });
  }

  // The plan for input dims `xd`, computing in `cdt` (f32, or bf16 for bf16 weights).
  Expected<std::shared_ptr<Plan>> build_plan(const Dims& xd, int64_t group, memory::data_type cdt) {
    size_t k = xd.size() - 2;
    Dims kernel(weights_.dims().begin() + 2, weights_.dims().end());
    std::vector<int64_t> strides = node_.attr_ints("strides", std::vector<int64_t>(k, 1));
    std::vector<int64_t> dil = node_.attr_ints("dilations", std::vector<int64_t>(k, 1));
    std::vector<int64_t> pads = node_.attr_ints("pads", std::vector<int64_t>(2 * k, 0));
    std::string auto_pad = node_.attr_string("auto_pad", "NOTSET");
    if (strides.size() != k || dil.size() != k || pads.size() != 2 * k) {
      return node_.error(StatusCode::kInvalidArgument, "strides/dilations/pads do not match ", k, " spatial dims");
    }
    memory::dims pad_l(k), pad_r(k), dnnl_dil(k);
    Dims out = {xd[0], weights_.dim(0)};
    for (size_t d = 0; d < k; ++d) {
      if (strides[d] <= 0 || dil[d] <= 0) {
        return node_.error(StatusCode::kInvalidArgument, "strides and dilations must be positive, got stride ",
                           strides[d], " and dilation ", dil[d], " on spatial axis ", d);
      }
      // Every term is the model's: checked (kernel_run stop 16: a dilation or pad near 2^63).
      const int64_t in = xd[d + 2];
      const CheckedInt64 eff_c = (CheckedInt64(kernel[d]) - 1) * dil[d] + 1;
      CheckedInt64 pb_c = pads[d], pe_c = pads[d + k];
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        const int64_t o = in / strides[d] + (in % strides[d] != 0);  // ceil(in / stride)
        const CheckedInt64 needed = (CheckedInt64(o) - 1) * strides[d] + eff_c - in;
        const int64_t total = needed.overflowed() ? 0 : std::max<int64_t>(0, needed.value());
        pb_c = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
        pe_c = CheckedInt64(total) - pb_c;
        if (needed.overflowed()) pe_c = needed;  // carries the overflow into the check below
      } else if (auto_pad == "VALID") {
        pb_c = pe_c = 0;
      }
      const CheckedInt64 padded = CheckedInt64(in) + pb_c + pe_c, span_c = padded - eff_c;
      if (span_c.overflowed()) {
        return node_.error(StatusCode::kInvalidArgument, "the output size of spatial axis ", d,
                           " passes int64 (input ", in, ", pads ", pads[d], " and ", pads[d + k], ", kernel ",
                           kernel[d], ", dilation ", dil[d], ")");
      }
      const int64_t eff = eff_c.value(), pb = pb_c.value(), pe = pe_c.value(), span = span_c.value();
      if (span < 0) {
        return node_.error(StatusCode::kInvalidArgument, "kernel extent ", eff, " exceeds padded input ", padded.value());
      }
      out.push_back(span / strides[d] + 1);
      pad_l[d] = pb;
      pad_r[d] = pe;
      dnnl_dil[d] = dil[d] - 1;  // oneDNN counts the gaps, ONNX the step
    }
    // The whole output's element count fits int64, so every product of its dims below does
    // (kernel_run stop 22: pads near 2^63 gave an output row of 9.0e18, and the plan's
    // out[2] * out[3] overflowed before any allocation could refuse it).
    CheckedInt64 out_elements = 1;
    for (int64_t d : out) out_elements *= d;
    if (out_elements.overflowed()) {
      return node_.error(StatusCode::kInvalidArgument, "the output shape ", dims_to_string(out),
                         " has more elements than int64 holds");
    }
    // Taps that read only padding for every output (a dilation as large as the input, as in
    // DeepLabV3's ASPP at 14x14) are dropped: oneDNN has no jit kernel for such a shape and its
    // reference kernel took 20 s; the rest is an equal, smaller convolution.
    Tensor w_used = weights_;
    Dims first(k, 0), live(kernel);
    bool trimmed = false;
    for (size_t d = 0; d < k; ++d) {
      int64_t lo = kernel[d], hi = -1;
      for (int64_t t = 0; t < kernel[d]; ++t) {
        // Output o reads input o * stride - pad_l + t * dil: live when some o lands inside.
        // (Checked: a pad near -2^63 is the model's; such an axis is left untrimmed.)
        const CheckedInt64 min_c = CheckedInt64(0) - pad_l[d] + CheckedInt64(t) * dil[d];
        const CheckedInt64 max_c = (CheckedInt64(out[d + 2]) - 1) * strides[d] + min_c;
        if (max_c.overflowed()) {
          hi = -1;
          break;
        }
        const int64_t min_pos = min_c.value(), max_pos = max_c.value();
        if (max_pos >= 0 && min_pos < xd[d + 2] && (min_pos >= 0 || max_pos >= 0)) {
          lo = std::min(lo, t);
          hi = std::max(hi, t);
        }
      }
      if (hi < 0) continue;  // nothing live: keep the conv as it is (its output is the bias)
      const CheckedInt64 new_pad_l_c = CheckedInt64(pad_l[d]) - CheckedInt64(lo) * dil[d];
      const CheckedInt64 new_eff = CheckedInt64(hi - lo) * dil[d] + 1;
      const CheckedInt64 new_pad_r_c = (CheckedInt64(out[d + 2]) - 1) * strides[d] + new_eff - xd[d + 2] - new_pad_l_c;
      if (new_pad_r_c.overflowed()) continue;
      const int64_t new_pad_l = new_pad_l_c.value(), new_pad_r = new_pad_r_c.value();
      if ((lo > 0 || hi < kernel[d] - 1) && new_pad_l >= 0 && new_pad_r >= 0) {
        first[d] = lo;
        live[d] = hi - lo + 1;
        pad_l[d] = new_pad_l;
        pad_r[d] = new_pad_r;
        trimmed = true;
      }
    }
    if (trimmed) {
      Dims wd = weights_.dims();
      for (size_t d = 0; d < k; ++d) wd[d + 2] = live[d];
      w_used = Tensor(weights_.dtype(), wd);
      memory src_w(stored_desc(weights_.dims()).submemory_desc(to_dnnl(wd), [&] {
        memory::dims off(weights_.rank(), 0);
        for (size_t d = 0; d < k; ++d) off[d + 2] = first[d];
        return off;
      }()), engine(), const_cast<void*>(weights_.raw_data()));
      memory dst_w(stored_desc(wd), engine(), w_used.raw_data());
      dnnl::reorder(src_w, dst_w).execute(thread_stream(), src_w, dst_w);
      thread_stream().wait();
      kernel = live;
    }
    Dims wdims = w_used.dims();
    if (group > 1) {
      wdims = {group, w_used.dim(0) / group};
      wdims.insert(wdims.end(), w_used.dims().begin() + 1, w_used.dims().end());
    }
    auto any = memory::format_tag::any;
    // bf16 weights on a CPU with bf16 math: bf16 source and weights, f32 output (half_weights.h);
    // the source is converted anyway, so its layout is the kernel's choice.
    const bool f32_compute = cdt == memory::data_type::f32;
    memory::desc src_md(to_dnnl(xd), cdt, f32_compute ? layout_tag(src_layout_, xd.size()) : any);
    memory::desc w_md(to_dnnl(wdims), cdt, any);
    memory::desc b_md({weights_.dim(0)}, memory::data_type::f32, memory::format_tag::x);
    // A bf16 kernel picks its output layout too: given the compiler's blocked f32 layout,
    // oneDNN 2.6 takes its AVX-512 bf16 kernel instead of AMX (ResNet-50: 1.7x slower than f32).
    memory::desc dst_md(to_dnnl(out), memory::data_type::f32, f32_compute ? layout_tag(dst_layout_, out.size()) : any);
    memory::dims strides_d(strides.begin(), strides.end());
    // 3x3 stride-1 convolutions try Winograd first (faster here when oneDNN has it for the
    // shape); everything else, and any shape Winograd rejects, is a direct convolution.
    auto make_desc = [&](dnnl::algorithm alg) {
      return bias_.defined()
                 ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md, w_md, b_md, dst_md,
                                                   strides_d, dnnl_dil, pad_l, pad_r)
                 : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md, w_md, dst_md,
                                                   strides_d, dnnl_dil, pad_l, pad_r);
    };
    bool winograd_shape = !trimmed && k == 2 && group == 1 && kernel == Dims{3, 3} && strides == std::vector<int64_t>{1, 1} &&
                          dil == std::vector<int64_t>{1, 1};
    dnnl::post_ops ops;
    if (has_sum_) ops.append_sum(1.f);
    if (!activation_.empty() && activation_ != "PRelu" && !silu_after_ &&
        !append_activation(ops, activation_, activation_params_)) {
      return node_.error(StatusCode::kNotImplemented, "fused activation '", activation_, "' has no oneDNN post-op");
    }
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    auto plan = std::make_shared<Plan>();
    plan->out_dims = out;
    try {
      dnnl::convolution_forward::primitive_desc pd;
      bool built = false;
      // Half weights on an f32 kernel expand their packed weights in every run, and oneDNN's
      // Winograd layout is 1.78x the direct one: below 14x14 outputs (ResNet-50's 7x7 stage,
      // 63% of its 3x3 weights) the expansion costs more than Winograd saves (ResNet-50 fp16,
      // 1 thread, interleaved with fp32, two runs: Winograd everywhere 1.11x / 1.16x the fp32
      // time, from 14x14 up 1.02x / 1.12x, from 28x28 up 1.07x / 1.14x; a loaded host).
      const bool half_f32 = is_half(weights_.dtype()) && f32_compute;
      // On AVX-512 our F(4x4,3x3) on nChw16c beats oneDNN's F(2x2,3x3) from 28x28 outputs
      // (ResNet-50's 56x56 and 28x28 layers: 0.6-0.8x its time alone, 0.83-0.90x in the model
      // at 1 thread; at 14x14, faster alone, its 4x-sized weights read cold in a model run made
      // those layers 1.13-1.16x slower; at 7x7, 4 tiles, it loses; docs/performance.md,
      // "Winograd on AVX-512"). But F(4x4) rounds worse: FCN-ResNet50's error against float64
      // went from 9.2e-5 to 2.0e-4 (ORT's 6.9e-5), past the zoo's bound (1.49e-4); on the
      // points 0, 1, -1, 1/2, -2 with blocked sums 1.3e-4 ("Winograd accuracy"), inside it
      // but by little: off unless PFRT_WINOGRAD16_MIN_AREA asks for it. f32 weights only.
      // Narrow outputs are the exception (own_winograd16_narrow_cout_): DenseNet's 3x3 layers
      // (128 -> 32 channels) at 56x56 took 1.63 ms on oneDNN's F(2x2), 1.38 direct, 0.73 on ours;
      // at 28x28 0.34 against 0.21 (docs/performance.md, "DenseNet-121 and ResNet-50 (perf20)").
      // F(2x2) transforms 4x its input for only 32 outputs per pixel; ours 2.25x.
      // (winograd_shape first: a 1-D convolution's `out` has no out[3]; UBSan under ASan, stop 23.)
      const bool narrow = winograd_shape && weights_.dim(0) <= own_winograd16_narrow_cout_ &&
                          out[2] * out[3] >= kNarrowWinogradMinArea;
      if (winograd_shape && use_winograd_ && f32_compute && !is_half(weights_.dtype()) &&
          (out[2] * out[3] >= own_winograd16_min_area_ || narrow) &&
          layout_tag("blocked", 4) == memory::format_tag::nChw16c && plan_own_winograd(*plan, xd, pad_l, 16)) {
        return plan;
      }
      if (!trimmed && f32_compute && plan_gemm(*plan, xd, kernel, strides, dil, pad_l, group)) {
        return plan;
      }
      if (winograd_shape && use_winograd_ && !(half_f32 && out[2] * out[3] < half_winograd_min_area_)) {
        try {
          pd = dnnl::convolution_forward::primitive_desc(make_desc(dnnl::algorithm::convolution_winograd), attr, engine());
          built = true;
        } catch (const dnnl::error&) {
        }
      }
      if (!built && winograd_shape && use_winograd_ && f32_compute && plan_own_winograd(*plan, xd, pad_l, 8)) {
        return plan;  // oneDNN has no Winograd here (AVX2): ours
      }
      if (!built) {
        const bool forced = layout_tag(src_layout_, xd.size()) != any || layout_tag(dst_layout_, out.size()) != any;
        bool reference = false;
        try {
          pd = dnnl::convolution_forward::primitive_desc(make_desc(dnnl::algorithm::convolution_direct), attr, engine());
          reference = std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
        } catch (const dnnl::error&) {
          if (!forced) throw;
          reference = true;
        }
        // No jit kernel for the layouts the compiler chose (a grouped conv with 8 channels per
        // group in AVX-512's 16-channel blocks gets oneDNN's reference kernel, 100x slower):
        // the kernel's own choice of layouts instead, reordering around it.
        if (reference && forced) {
          src_md = memory::desc(to_dnnl(xd), cdt, any);
          dst_md = memory::desc(to_dnnl(out), memory::data_type::f32, any);
          pd = dnnl::convolution_forward::primitive_desc(make_desc(dnnl::algorithm::convolution_direct), attr, engine());
        }
      }
      if (!f32_compute && std::string(pd.impl_info_str()).rfind("ref", 0) == 0) {
        // No bf16 jit kernel for this shape: f32 with the weights converted, said in the log
        // and the weights report rather than a reference kernel 100x slower.
        note_bf16_declined(node_, pd.impl_info_str());
        src_md = memory::desc(to_dnnl(xd), memory::data_type::f32, any);
        w_md = memory::desc(to_dnnl(wdims), memory::data_type::f32, any);
        pd = dnnl::convolution_forward::primitive_desc(make_desc(dnnl::algorithm::convolution_direct), attr, engine());
      }
      plan->src = pd.src_desc();
      plan->dst = pd.dst_desc();
      if (f32_compute && !is_half(weights_.dtype()) &&
          plan_blocks(*plan, pd, xd, wdims, w_used, group, strides_d, dnnl_dil, pad_l, pad_r, attr)) {
        if (activation_ == "PRelu") plan->prelu = make_prelu_step(plan->dst, activation_params_, 1);
        thread_stream().wait();
        return plan;
      }
      plan->prim = dnnl::convolution_forward(pd);
      plan->scratch = pd.scratchpad_desc();
      // bf16 kernels take the bf16 weights as stored; f32 kernels f32 weights (half ones are
      // converted in pack_weights: oneDNN 2.6 has no f16 -> blocked f32 reorder).
      const bool f32_kernel = pd.weights_desc().data_type() == memory::data_type::f32;
      memory user_w(memory::desc(to_dnnl(wdims), f32_kernel ? memory::data_type::f32 : dnnl_type(w_used.dtype()),
                                 plain_tag(wdims.size())),
                    engine(), const_cast<void*>(w_used.raw_data()));
      // Row blocks that were declined may have packed the weights for this pd already (an
      // imported blob is taken once).
      if (!plan->weights) pack_weights(*plan, pd, xd, user_w);
      if (bias_.defined()) plan->bias = memory(b_md, engine(), const_cast<void*>(bias_.raw_data()));
      if (activation_ == "PRelu") plan->prelu = make_prelu_step(plan->dst, activation_params_, 1);
      thread_stream().wait();
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the convolution: ", e.what());
    }
    return plan;
  }

  // The channel block of `d` when, at batch 1, channels are its outermost dimension (plain
  // ncw/nchw/ncdhw, or 8- or 16-channel blocks of them): a channel range starting on a block is
  // then one contiguous piece. 0 otherwise.
  static int64_t channel_outer_block(const memory::desc& d) {
    const memory::dims dims = d.dims();
    if (dims.empty() || dims[0] != 1 || d.data_type() != memory::data_type::f32) return 0;
    using T = memory::format_tag;
    const T plain[] = {T::abc, T::abcd, T::abcde}, b8[] = {T::aBc8b, T::aBcd8b, T::aBcde8b},
            b16[] = {T::aBc16b, T::aBcd16b, T::aBcde16b};
    if (dims.size() < 3 || dims.size() > 5) return 0;
    const size_t r = dims.size() - 3;
    if (d == memory::desc(dims, memory::data_type::f32, plain[r])) return 1;
    if (d == memory::desc(dims, memory::data_type::f32, b8[r])) return 8;
    if (d == memory::desc(dims, memory::data_type::f32, b16[r])) return 16;
    return 0;
  }

  // Channels [c0, c0 + count) of `whole` (channel_outer_block > 0): their desc in the same
  // layout, and their byte offset into `whole`'s buffer.
  static std::pair<memory::desc, size_t> channel_range(const memory::desc& whole, int64_t cb, int64_t c0, int64_t count) {
    using T = memory::format_tag;
    memory::dims dims = whole.dims();
    int64_t spatial = 1;
    for (size_t d = 2; d < dims.size(); ++d) spatial *= dims[d];
    dims[1] = count;
    const size_t r = dims.size() - 3;
    const T plain[] = {T::abc, T::abcd, T::abcde}, b8[] = {T::aBc8b, T::aBcd8b, T::aBcde8b},
            b16[] = {T::aBc16b, T::aBcd16b, T::aBcde16b};
    const T tag = cb == 16 ? b16[r] : cb == 8 ? b8[r] : plain[r];
    return {memory::desc(dims, memory::data_type::f32, tag), static_cast<size_t>(c0 * spatial) * sizeof(float)};
  }

  // At batch 1, whether `d` is channels-last (nwc, nhwc, ndhwc): its first spatial dimension
  // is then outermost, and a range of it one contiguous piece.
  static bool channels_last(const memory::desc& d) {
    const memory::dims dims = d.dims();
    if (dims.size() < 3 || dims.size() > 5 || dims[0] != 1 || d.data_type() != memory::data_type::f32) return false;
    using T = memory::format_tag;
    const T tags[] = {T::acb, T::acdb, T::acdeb};
    return d == memory::desc(dims, memory::data_type::f32, tags[dims.size() - 3]);
  }

  // Rows [r0, r0 + count) of the first spatial dimension of channels-last `whole`: their desc
  // and byte offset.
  static std::pair<memory::desc, size_t> row_range(const memory::desc& whole, int64_t r0, int64_t count) {
    using T = memory::format_tag;
    memory::dims dims = whole.dims();
    int64_t row = 1;  // floats per row
    for (size_t d = 1; d < dims.size(); ++d) row *= d == 2 ? 1 : dims[d];
    dims[2] = count;
    const T tags[] = {T::acb, T::acdb, T::acdeb};
    return {memory::desc(dims, memory::data_type::f32, tags[dims.size() - 3]), static_cast<size_t>(r0 * row) * sizeof(float)};
  }

  // Cuts the convolution `pd` describes into blocks taken dynamically (conv_blocks.h) when
  // PFRT_CONV_BLOCKS asks for it and the plan is for more than one thread: blocks of output
  // channels when the layouts keep channels outermost (each block its own slice of the
  // weights), blocks of output rows when they are channels-last (each reading its input rows
  // with their halo, all sharing the packed weights). False (nothing changed) when neither
  // applies or a block would get oneDNN's reference kernel.
  bool plan_blocks(Plan& plan, const dnnl::convolution_forward::primitive_desc& pd, const Dims& xd, const Dims& wdims,
                   const Tensor& w_used, int64_t group, const memory::dims& strides, const memory::dims& dil,
                   const memory::dims& pad_l, const memory::dims& pad_r, const dnnl::primitive_attr& attr) {
    // PFRT_CONV_BLOCKS_PLAN_THREADS: plan blocks as for that many threads whatever the run's
    // team (measuring what the cut alone costs on one thread; docs/performance.md).
    const char* plan_threads = std::getenv("PFRT_CONV_BLOCKS_PLAN_THREADS");
    const int threads = plan_threads ? std::atoi(plan_threads) : omp_get_max_threads();
    if (blocks_per_thread_ <= 0 || threads <= 1 || xd[0] != 1) return false;
    const int64_t src_cb = channel_outer_block(plan.src), dst_cb = channel_outer_block(plan.dst);
    // oneDNN's Winograd stays whole: each block of output channels would transform the whole
    // input again (ResNet-50's 3x3 layers cut into 8 blocks: 1.36x the time on one thread).
    if (std::string(pd.impl_info_str()).find("wino") != std::string::npos) return false;
    // Blocks of channels pack their own weight slices: not from a plan file's stand-in for
    // weights it kept only packed whole (weight_stand_in.h).
    const bool by_channels = dst_cb > 0 && (group == 1 || src_cb > 0) && !is_weight_stand_in(weights_);
    const bool by_rows = !by_channels && channels_last(plan.src) && channels_last(plan.dst);
    if (!by_channels && !by_rows) return false;
    int64_t per_output = 1;  // multiply-adds per output element
    for (size_t d = 1; d < w_used.rank(); ++d) per_output *= w_used.dim(d);
    const int64_t macs = num_elements(plan.out_dims) * per_output;
    std::vector<ConvBlock> cuts;
    if (by_channels) {
      ConvBlockShape shape;
      shape.in_channels = xd[1];
      shape.out_channels = weights_.dim(0);
      shape.group = group;
      shape.channel_block = group > 1 ? std::max(src_cb, dst_cb) : dst_cb;
      shape.macs = macs;
      cuts = plan_conv_blocks(shape, threads, blocks_per_thread_);
    } else {
      cuts = plan_row_blocks(plan.out_dims[2], macs, threads, blocks_per_thread_);
    }
    if (cuts.empty()) return false;
    const memory::desc user_desc(to_dnnl(wdims), memory::data_type::f32, plain_tag(wdims.size()));
    memory user_w(user_desc, engine(), const_cast<void*>(w_used.raw_data()));
    std::vector<Block> blocks;
    std::string first_impl;
    // oneDNN sizes a primitive for the calling thread's OpenMP threads: these run on one.
    struct OneThread {
      int saved = omp_get_max_threads();
      OneThread() { omp_set_num_threads(1); }
      ~OneThread() { omp_set_num_threads(saved); }
    } one_thread;
    try {
      memory shared_w;  // row blocks: the whole convolution's packed weights
      if (by_rows) {
        pack_weights(plan, pd, xd, user_w);
        shared_w = plan.weights;
      }
      for (const ConvBlock& c : cuts) {
        Block blk;
        memory::desc src_md = plan.src, dst_md = plan.dst, w_md, b_md;
        memory::dims bpad_l = pad_l, bpad_r = pad_r;
        memory::dims bw = to_dnnl(wdims), w_off(wdims.size(), 0);
        if (by_channels) {
          if (group > 1) std::tie(src_md, blk.src_offset) = channel_range(plan.src, src_cb, c.in0, c.ins);
          std::tie(dst_md, blk.dst_offset) = channel_range(plan.dst, dst_cb, c.out0, c.outs);
          bw[0] = group > 1 ? c.groups : c.outs;
          w_off[0] = group > 1 ? c.group0 : c.out0;
          w_md = memory::desc(bw, memory::data_type::f32, memory::format_tag::any);
          b_md = memory::desc({c.outs}, memory::data_type::f32, memory::format_tag::x);
        } else {
          RowWindow win = row_window(c.row0, c.row0 + c.rows, xd[2], strides[0], dil[0] + 1, w_used.dim(2), pad_l[0]);
          if (win.ins <= 0) return false;  // rows that read only padding
          std::tie(src_md, blk.src_offset) = row_range(plan.src, win.in0, win.ins);
          std::tie(dst_md, blk.dst_offset) = row_range(plan.dst, c.row0, c.rows);
          bpad_l[0] = win.pad_before;
          bpad_r[0] = win.pad_after;
          w_md = pd.weights_desc();
          b_md = memory::desc({weights_.dim(0)}, memory::data_type::f32, memory::format_tag::x);
        }
        auto make = [&](dnnl::algorithm alg) {
          auto desc = bias_.defined()
                          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md, w_md, b_md,
                                                            dst_md, strides, dil, bpad_l, bpad_r)
                          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, alg, src_md, w_md,
                                                            dst_md, strides, dil, bpad_l, bpad_r);
          return dnnl::convolution_forward::primitive_desc(desc, attr, engine());
        };
        dnnl::convolution_forward::primitive_desc bpd = make(dnnl::algorithm::convolution_direct);
        if (std::string(bpd.impl_info_str()).rfind("ref", 0) == 0) return false;
        if (first_impl.empty()) first_impl = bpd.impl_info_str();
        blk.prim = dnnl::convolution_forward(bpd);
        blk.src = src_md;
        blk.dst = dst_md;
        blk.scratch = bpd.scratchpad_desc();
        if (by_channels) {
          // The slice made dense before packing: oneDNN 2.6's reorder into its Winograd layout
          // read a strided source as dense (wrong outputs when Winograd layers were cut), and a
          // dense copy at plan time costs nothing per run.
          memory part(user_desc.submemory_desc(bw, w_off), engine(), const_cast<void*>(w_used.raw_data()));
          memory dense(memory::desc(bw, memory::data_type::f32, plain_tag(bw.size())), engine());
          dnnl::reorder(part, dense).execute(thread_stream(), part, dense);
          blk.weights = memory(bpd.weights_desc(), engine());
          dnnl::reorder(dense, blk.weights).execute(thread_stream(), dense, blk.weights);
          thread_stream().wait();
          if (bias_.defined()) {
            blk.bias = memory(b_md, engine(), static_cast<float*>(const_cast<void*>(bias_.raw_data())) + c.out0);
          }
        } else {
          blk.weights = shared_w;
          if (bias_.defined()) blk.bias = memory(b_md, engine(), const_cast<void*>(bias_.raw_data()));
        }
        blocks.push_back(std::move(blk));
      }
    } catch (const dnnl::error&) {  // a block oneDNN cannot make: the convolution stays whole
      return false;  // (row blocks' packed weights, if made, are the whole pd's: kept for it)
    }
    thread_stream().wait();
    if (by_channels) plan.impl = "blocks:" + std::to_string(blocks.size()) + ":" + first_impl;
    plan.blocks = std::move(blocks);
    return true;
  }

  struct BlockScratch {};

  // The blocks of `plan` on this step's team, each thread taking the next block when it is done.
  static void run_blocks(const Plan& plan, const memory& src, const memory& dst) {
    char* src_base = static_cast<char*>(src.get_data_handle());
    char* dst_base = static_cast<char*>(dst.get_data_handle());
    run_blocks_dynamic(plan.blocks.size(), omp_get_max_threads(), [&](size_t b) {
      const Block& blk = plan.blocks[b];
      memory s(blk.src, engine(), src_base + blk.src_offset);
      memory d(blk.dst, engine(), dst_base + blk.dst_offset);
      memory scratch(blk.scratch, engine(), thread_scratch<BlockScratch>(blk.scratch.get_size() / sizeof(float) + 1));
      std::unordered_map<int, memory> args = {
          {DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, blk.weights}, {DNNL_ARG_DST, d}, {DNNL_ARG_SCRATCHPAD, scratch}};
      if (blk.bias) args[DNNL_ARG_BIAS] = blk.bias;
      blk.prim.execute(thread_stream(), args);
      thread_stream().wait();
    });
  }

  // Multiply-adds per input element: output channels per group x kernel taps / stride area.
  double bf16_macs_per_input(const Dims& xd, int64_t group) const {
    double taps = 1;
    for (size_t d = 2; d < weights_.rank(); ++d) taps *= static_cast<double>(weights_.dim(d));
    std::vector<int64_t> strides = node_.attr_ints("strides", std::vector<int64_t>(xd.size() - 2, 1));
    double area = 1;
    for (int64_t st : strides) area *= static_cast<double>(std::max<int64_t>(st, 1));
    return static_cast<double>(weights_.dim(0) / std::max<int64_t>(group, 1)) * taps / area;
  }

  // The weights' own type, row-major, for `dims` (the stored layout).
  memory::desc stored_desc(const Dims& dims) const {
    return memory::desc(to_dnnl(dims), dnnl_type(weights_.dtype()), plain_tag(dims.size()));
  }

  // The format for a layout the compiler chose (compiler/passes/layout_assignment.h): the
  // channel block this CPU's convolution kernels use, or NCHW; oneDNN's choice otherwise.
  static memory::format_tag layout_tag(const std::string& layout, size_t rank) {
    static const memory::format_tag kBlocked = dnnl::get_effective_cpu_isa() >= dnnl::cpu_isa::avx512_core
                                                   ? memory::format_tag::nChw16c
                                                   : memory::format_tag::nChw8c;
    if (rank != 4 || layout.empty()) return memory::format_tag::any;
    return layout == "blocked" ? kBlocked : memory::format_tag::nchw;
  }

  // Our F(4x4, 3x3) Winograd, for a 2-D 3x3 stride-1 convolution with at most a ReLU fused and
  // no residual: the AVX2 variant on nChw8c (block 8; oneDNN has no Winograd on AVX2) or the
  // AVX-512 one on nChw16c (block 16). False when the CPU or the shape does not suit it.
  bool plan_own_winograd(Plan& plan, const Dims& xd, const memory::dims& pad_l, int block) {
    if (!WinogradConv::cpu_supported(block) || has_sum_ || !(activation_.empty() || activation_ == "Relu")) return false;
    // The output size accounts for the bottom/right padding: tiles past it read zeros.
    WinogradConv::Geometry g{xd[0], xd[2], xd[3], pad_l[0], pad_l[1], plan.out_dims[2], plan.out_dims[3]};
    if (!WinogradConv::suits(xd[1], weights_.dim(0), g, block)) return false;
    plan.winograd = own_winograd_for(xd, block);
    plan.geometry = g;
    const auto tag = block == 16 ? memory::format_tag::nChw16c : memory::format_tag::nChw8c;
    plan.src = memory::desc(to_dnnl(xd), memory::data_type::f32, tag);
    plan.dst = memory::desc(to_dnnl(plan.out_dims), memory::data_type::f32, tag);
    return true;
  }

  // Our panel product (gemm_conv.h) for a 2-D ungrouped, undilated convolution with at most
  // gemm_max_area_ output pixels, f32 weights, at most a ReLU and a residual fused, on AVX-512:
  // nChw16c in and out. False when the CPU or the shape does not suit it.
  bool plan_gemm(Plan& plan, const Dims& xd, const Dims& kernel, const std::vector<int64_t>& strides,
                 const std::vector<int64_t>& dil, const memory::dims& pad_l, int64_t group) {
    if (xd.size() != 4 || group != 1 || kernel.size() != 2 || dil != std::vector<int64_t>{1, 1}) return false;
    // PFRT_CONV_BLOCKS asks for oneDNN primitives cut into blocks taken dynamically
    // (conv_blocks.h); this kernel splits its panels statically.
    if (blocks_per_thread_ > 0) return false;
    // Its threads split the 32-channel panels: fewer panels than threads would leave some idle.
    if (weights_.dim(0) / 32 < omp_get_max_threads()) return false;
    // AVX-512 as oneDNN sees it too (ONEDNN_MAX_CPU_ISA=AVX2 stands in for an AVX2 host: the
    // convolutions around then use nChw8c, and this one would reorder from and to it).
    const bool pointwise = kernel == Dims{1, 1};
    if (plan.out_dims[2] * plan.out_dims[3] > (pointwise ? gemm_1x1_max_area_ : gemm_max_area_) ||
        !GemmConv::cpu_supported() ||
        layout_tag("blocked", 4) != memory::format_tag::nChw16c) {
      return false;
    }
    if (!(activation_.empty() || activation_ == "Relu") || weights_.dtype() != DType::kFloat32 ||
        is_weight_stand_in(weights_) || !GemmConv::suits(xd[1], weights_.dim(0))) {
      return false;
    }
    if (pad_l[0] < 0 || pad_l[1] < 0) return false;
    plan.gemm = std::make_shared<const GemmConv>(weights_, bias_, activation_ == "Relu", strides[0], strides[1],
                                                 pad_l[0], pad_l[1]);
    plan.gemm_geometry = {xd[0], xd[2], xd[3], plan.out_dims[2], plan.out_dims[3]};
    plan.src = memory::desc(to_dnnl(xd), memory::data_type::f32, memory::format_tag::nChw16c);
    plan.dst = memory::desc(to_dnnl(plan.out_dims), memory::data_type::f32, memory::format_tag::nChw16c);
    plan.impl = "pyflame_rt-gemm-conv";
    return true;
  }

  Node node_;
  int64_t opset_;
  Tensor weights_, bias_;
  bool fused_ = false, has_sum_ = false;
  bool silu_after_ = false;  // SiLU runs as our pass after the primitive, not as a post-op (silu_as_post_op)
  bool use_winograd_ = std::getenv("PFRT_NO_WINOGRAD") == nullptr;
  // Blocks per thread for convolutions cut into blocks taken dynamically (conv_blocks.h);
  // 0 (the default): one primitive, oneDNN's static split.
  int blocks_per_thread_ = [] {
    const char* v = std::getenv("PFRT_CONV_BLOCKS");
    return v ? std::atoi(v) : 0;
  }();
  // Output area from which f32 convolutions on AVX-512 take our Winograd instead of oneDNN's
  // (build_plan): never by default (its rounding, above); PFRT_WINOGRAD16_MIN_AREA=784 is the
  // speed-only choice measured there.
  int64_t own_winograd16_min_area_ = [] {
    const char* v = std::getenv("PFRT_WINOGRAD16_MIN_AREA");
    return v ? std::atol(v) : std::numeric_limits<int64_t>::max();
  }();
  // Output channels up to which f32 3x3 convolutions on AVX-512 with at least
  // kNarrowWinogradMinArea output pixels take our Winograd all the same (build_plan;
  // PFRT_WINOGRAD16_NARROW_COUT overrides, 0 turns it off). Its rounding there: DenseNet-121
  // 3.5e-6 from ORT against 3.0e-6 on oneDNN's (the zoo's bound is 1e-4); FCN-ResNet50, the zoo
  // model nearest its bound, has no 3x3 layer under 64 channels.
  static constexpr int64_t kNarrowWinogradMinArea = 28 * 28;
  int64_t own_winograd16_narrow_cout_ = [] {
    const char* v = std::getenv("PFRT_WINOGRAD16_NARROW_COUT");
    return v ? std::atol(v) : int64_t{32};
  }();
  // Output pixels up to which convolutions on AVX-512 take our panel product (plan_gemm):
  // ResNet-50's 7x7 stage; 1x1 ones its 14x14 stage too (PFRT_GEMM_CONV_MAX_AREA and
  // PFRT_GEMM_CONV_1X1_MAX_AREA override; 0 turns it off).
  int64_t gemm_max_area_ = [] {
    const char* v = std::getenv("PFRT_GEMM_CONV_MAX_AREA");
    return v ? std::atol(v) : int64_t{49};
  }();
  int64_t gemm_1x1_max_area_ = [] {
    const char* v = std::getenv("PFRT_GEMM_CONV_1X1_MAX_AREA");
    return v ? std::atol(v) : int64_t{196};
  }();
  // Output area from which half weights on an f32 kernel take oneDNN's Winograd (above).
  int64_t half_winograd_min_area_ = [] {
    const char* v = std::getenv("PFRT_HALF_WINOGRAD_MIN_AREA");
    return v ? std::atol(v) : int64_t{14 * 14};
  }();
  // Below this many multiply-adds per input element a bf16-capable convolution computes in f32
  // (PFRT_BF16_MIN_MACS overrides; measured in docs/performance.md).
  double bf16_min_macs_ = [] {
    const char* v = std::getenv("PFRT_BF16_MIN_MACS");
    return v ? std::atof(v) : kBf16MinMacs;
  }();
  std::string activation_, src_layout_, dst_layout_;
  std::vector<float> activation_params_;
  ShapePlanCache<Plan> plans_;
  std::mutex imported_mu_;
  std::vector<PackedBlob> imported_;  // import_packed(): used as plans are built
};

}  // namespace

std::unique_ptr<NativeOp> make_conv_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.inputs.size() < 2) return nullptr;
  auto w = graph.initializers.find(node.inputs[1]);
  // Half weights: absorbed from the quantizer's Cast (half_weights.h).
  if (w == graph.initializers.end() || !(w->second.dtype() == DType::kFloat32 || is_half(w->second.dtype())) ||
      w->second.rank() < 3 ||
      w->second.rank() > 5) {
    return nullptr;  // weights computed at run time or not f32: the reference kernel handles it
  }
  Tensor bias;
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    auto b = graph.initializers.find(node.inputs[2]);
    if (b == graph.initializers.end() || b->second.dtype() != DType::kFloat32 || b->second.numel() != w->second.dim(0)) {
      return nullptr;
    }
    bias = b->second;
  }
  if (node.has_attr("kernel_shape")) {
    Dims k(w->second.dims().begin() + 2, w->second.dims().end());
    if (node.attr_ints("kernel_shape") != k) return nullptr;
  }
  std::string act = fused_activation(node);
  std::vector<float> params = fused_activation_params(node);
  dnnl::post_ops probe;
  if (act == "PRelu") {
    if (params.size() != 1 && static_cast<int64_t>(params.size()) != w->second.dim(0)) return nullptr;
  } else if (!act.empty() && !append_activation(probe, act, params)) {
    return nullptr;
  }
  return std::make_unique<ConvOp>(node, opset, w->second, bias);
}

// Float convolution, plain or fused by the compiler (compiler/passes/conv_fusion).
void register_conv_ops(NativeOpTable& t) {
  t.add({"", "Conv", 1, kNativeAnyOpset, {DType::kFloat32}, make_conv_op});
  t.add({"pyflame_rt", "FusedConv", 1, kNativeAnyOpset, {DType::kFloat32}, make_conv_op});
}

bool append_activation(dnnl::post_ops& ops, const std::string& name, const std::vector<float>& p) {
  using A = dnnl::algorithm;
  auto param = [&](size_t i, float fallback) { return i < p.size() ? p[i] : fallback; };
  // Parameters are the model's. oneDNN computes x <= 0 branches as alpha x even at x = 0, so an
  // infinite alpha gives NaN where ONNX's x >= 0 branch gives 0 (Elu, LeakyRelu, HardSigmoid;
  // kernel_run found the CPU device and the reference disagreeing), and it throws on a Clip
  // whose min passes its max (a std::terminate at session creation: FusedMatMul probed here
  // outside any try). Such activations are left to the reference kernels.
  for (float v : p) {
    if (!std::isfinite(v)) return false;
  }
  if (name == "Clip" && !(param(0, -3.4e38f) <= param(1, 3.4e38f))) return false;
  if (name == "Relu") ops.append_eltwise(1.f, A::eltwise_relu, 0.f, 0.f);
  else if (name == "LeakyRelu") ops.append_eltwise(1.f, A::eltwise_relu, param(0, 0.01f), 0.f);
  else if (name == "Clip") ops.append_eltwise(1.f, A::eltwise_clip, param(0, -3.4e38f), param(1, 3.4e38f));
  else if (name == "Sigmoid") ops.append_eltwise(1.f, A::eltwise_logistic, 0.f, 0.f);
  else if (name == "Tanh") ops.append_eltwise(1.f, A::eltwise_tanh, 0.f, 0.f);
  else if (name == "HardSwish") ops.append_eltwise(1.f, A::eltwise_hardswish, 0.f, 0.f);
  else if (name == "HardSigmoid") {
    ops.append_eltwise(1.f, A::eltwise_linear, param(0, 0.2f), param(1, 0.5f));
    ops.append_eltwise(1.f, A::eltwise_clip, 0.f, 1.f);
  } else if (name == "SiLU") ops.append_eltwise(1.f, A::eltwise_swish, 1.f, 0.f);
  else if (name == "Gelu") ops.append_eltwise(1.f, A::eltwise_gelu_erf, 0.f, 0.f);
  else if (name == "Elu") ops.append_eltwise(1.f, A::eltwise_elu, param(0, 1.f), 0.f);
  else if (name == "Sqrt") ops.append_eltwise(1.f, A::eltwise_sqrt, 0.f, 0.f);
  else if (name == "Abs") ops.append_eltwise(1.f, A::eltwise_abs, 0.f, 0.f);
  else if (name == "Exp") ops.append_eltwise(1.f, A::eltwise_exp, 0.f, 0.f);
  else if (name == "Log") ops.append_eltwise(1.f, A::eltwise_log, 0.f, 0.f);
  else if (name == "Neg") ops.append_eltwise(1.f, A::eltwise_linear, -1.f, 0.f);
  else return false;
  return true;
}

void PReluStep::execute(const dnnl::memory& dst) const {
  Scratchpad scratchpad(scratch);
  prim.execute(thread_stream(), {{DNNL_ARG_SRC, dst}, {DNNL_ARG_WEIGHTS, slopes}, {DNNL_ARG_DST, dst},
                                 {DNNL_ARG_SCRATCHPAD, scratchpad.memory()}});
  thread_stream().wait();  // the scratchpad is freed on return
}

PReluStep make_prelu_step(const memory::desc& dst, const std::vector<float>& slopes, int channel_axis) {
  memory::dims wdims(dst.dims().size(), 1);
  if (slopes.size() > 1) wdims[static_cast<size_t>(channel_axis)] = static_cast<memory::dim>(slopes.size());
  // "any": the jit kernel wants the slopes blocked like dst (given plain ones, oneDNN picks the
  // reference kernel).
  memory::desc w_md(wdims, memory::data_type::f32, memory::format_tag::any);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::prelu_forward::primitive_desc pd(dnnl::prelu_forward::desc(dnnl::prop_kind::forward_inference, dst, w_md),
                                         attr, engine());
  PReluStep step;
  step.prim = dnnl::prelu_forward(pd);
  step.scratch = pd.scratchpad_desc();
  memory user(memory::desc(wdims, memory::data_type::f32, plain_tag(wdims.size())), engine(),
              const_cast<float*>(slopes.data()));
  step.slopes = memory(pd.weights_desc(), engine());
  dnnl::reorder(user, step.slopes).execute(thread_stream(), user, step.slopes);
  thread_stream().wait();
  return step;
}

}  // namespace cpu
}  // namespace pyflame_rt
