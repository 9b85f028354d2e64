// Native standalone BatchNormalization (inference: constant scale, bias, mean and variance)
// in the layout of its input: after a convolution and an activation (which the conv fusions
// cannot fold through) the value stays blocked or channels-last. Plain (N,C,...) and
// channels-last inputs take our loop y = x * s[c] + t[c] (oneDNN 2.6 has only its reference
// kernel for channels-last, 20x slower), and so do channel-blocked inputs (aBc8b, nChw16c: its
// reference kernel again for 1-D blocked data); other layouts oneDNN's batch normalization with
// global statistics. Any rank 2-5.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

class BatchNormOp : public NativeOp {
 public:
  BatchNormOp(const Node& node, int64_t opset, std::vector<Tensor> params)
      : node_(node), opset_(opset), params_(std::move(params)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    bool f32 = x && (x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32));
    Dims dims = !f32 ? Dims{} : x->has_native ? x->dims : x->plain.tensor.dims();
    const int64_t channels = params_[0].numel();
    if (!f32 || dims.size() < 2 || dims.size() > 5 || dims[1] != channels || num_elements(dims) == 0) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    memory::desc md = x->has_native ? x->native.get_desc() : plain_desc(dims);
    const bool plain = md == plain_desc(dims);
    const int64_t block = plain ? 0 : channel_block(md, dims);
    if (plain || block || md == channels_last(dims)) {
      // Channels in blocks of 8 or 16 (a convolution's output) take our loop too: oneDNN 2.6
      // has only its reference kernel for 1-D blocked data (1.2 ms for [1, 256, 200] on AVX2).
      memory src = x->as_native(md);
      // Over X itself when nothing reads it after this step (a convolution's output, usually).
      const bool in_place = x->last_use && x->has_native && !OutputDestination::pending();
      CpuValue out = in_place ? CpuValue::from_native(src, dims, x->buffer) : CpuValue::allocate_native(md, dims);
      const float* xp = static_cast<const float*>(src.get_data_handle());
      float* yp = static_cast<float*>(out.native.get_data_handle());
      if (block) {
        scale_shift_blocked(xp, yp, dims, block);
      } else {
        scale_shift(xp, yp, dims, plain);
      }
      outputs[0] = std::move(out);
      return Status::OK();
    }
    std::shared_ptr<const Plan> plan = plan_for(md);
    if (!plan) return run_reference(node_, opset_, inputs, outputs);
    memory src = x->as_native(md);
    CpuValue out = CpuValue::allocate_native(md, dims);
    Scratchpad scratch(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCALE, plan->vec[0]},
                                         {DNNL_ARG_SHIFT, plan->vec[1]}, {DNNL_ARG_MEAN, plan->vec[2]},
                                         {DNNL_ARG_VARIANCE, plan->vec[3]}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::batch_normalization_forward prim;
    memory::desc scratch;
    memory vec[4];  // scale, shift, mean, variance (views of params_)
  };

  static memory::desc channels_last(const Dims& dims) {
    using tag = memory::format_tag;
    static const tag kTags[] = {tag::ab, tag::ab, tag::ab, tag::acb, tag::acdb, tag::acdeb};
    return memory::desc(to_dnnl(dims), memory::data_type::f32, kTags[dims.size()]);
  }

  // s = scale / sqrt(var + eps) and t = B - mean * s per channel, then both padded with zeros
  // to whole blocks of 16 (padding channels of blocked data: 0 * x + 0 = 0), once.
  void fold_once() {
    std::call_once(folded_once_, [&] {
      const int64_t c = params_[0].numel();
      const double eps = node_.attr_float("epsilon", 1e-5f);
      s_.resize(static_cast<size_t>(c));
      t_.resize(static_cast<size_t>(c));
      for (int64_t i = 0; i < c; ++i) {
        double k = params_[0].data<float>()[i] / std::sqrt(static_cast<double>(params_[3].data<float>()[i]) + eps);
        s_[static_cast<size_t>(i)] = static_cast<float>(k);
        t_[static_cast<size_t>(i)] = static_cast<float>(params_[1].data<float>()[i] - params_[2].data<float>()[i] * k);
      }
      s_.resize(static_cast<size_t>((c + 15) / 16 * 16), 0.f);
      t_.resize(s_.size(), 0.f);
    });
  }

  // The channel block (8 or 16) when `md` is f32 [N][C/block][spatial...][block] (aBc8b,
  // nChw16c, ...) for `dims`, else 0.
  static int64_t channel_block(const memory::desc& md, const Dims& dims) {
    using tag = memory::format_tag;
    static const tag k8[] = {tag::undef, tag::undef, tag::undef, tag::aBc8b, tag::aBcd8b, tag::aBcde8b};
    static const tag k16[] = {tag::undef, tag::undef, tag::undef, tag::aBc16b, tag::aBcd16b, tag::aBcde16b};
    if (dims.size() < 3 || dims.size() > 5) return 0;
    for (int64_t block : {8, 16}) {
      const tag t = block == 8 ? k8[dims.size()] : k16[dims.size()];
      if (md == memory::desc(to_dnnl(dims), memory::data_type::f32, t)) return block;
    }
    return 0;
  }

  // y = x * s[c] + t[c] on channel-blocked data, padding channels included (they stay 0).
  void scale_shift_blocked(const float* x, float* y, const Dims& dims, int64_t block) {
    fold_once();
    const int64_t n = dims[0], c = dims[1], blocks = (c + block - 1) / block;
    const int64_t spatial = num_elements(dims) / (n * c);
    const bool parallel = num_elements(dims) >= (1 << 15) && omp_get_max_threads() > 1;
#pragma omp parallel for if (parallel) schedule(static)
    for (int64_t nb = 0; nb < n * blocks; ++nb) {
      const int64_t first = (nb % blocks) * block;
      channel_affine_f32(x + nb * spatial * block, y + nb * spatial * block, s_.data() + first, t_.data() + first,
                         spatial, block, false);
    }
  }

  // y = x * s[c] + t[c], with s = scale / sqrt(var + eps) and t = B - mean * s, channel axis 1
  // of `dims`: innermost in channels-last data, else outside the spatial positions. The
  // loops are loop_kernels' (compiled for AVX-512 and AVX2 as well as the baseline: this
  // file's own loops ran at SSE width, 12-14 us for [1, 256, 200] at 1 thread).
  void scale_shift(const float* x, float* y, const Dims& dims, bool channels_first) {
    fold_once();
    const int64_t n = dims[0], c = dims[1], spatial = num_elements(dims) / (n * c);
    const bool parallel = num_elements(dims) >= (1 << 15) && omp_get_max_threads() > 1;
    if (channels_first && spatial > 1) {  // (one position: channels are innermost, rows below)
#pragma omp parallel for if (parallel) schedule(static)
      for (int64_t nc = 0; nc < n * c; ++nc) {
        channel_affine_f32(x + nc * spatial, y + nc * spatial, s_.data() + nc % c, t_.data() + nc % c, spatial, 1,
                           false);
      }
    } else {
      // Rows split over the team as the convolution before wrote them (static, in order).
#pragma omp parallel if (parallel)
      {
        const int64_t rows = n * spatial, threads = omp_get_num_threads(), me = omp_get_thread_num();
        const int64_t per = (rows + threads - 1) / threads;
        const int64_t r0 = std::min(rows, me * per), r1 = std::min(rows, (me + 1) * per);
        if (r0 < r1) channel_affine_f32(x + r0 * c, y + r0 * c, s_.data(), t_.data(), r1 - r0, c, false);
      }
    }
  }

  // nullptr when oneDNN cannot build it for this layout (remembered: no retry per run).
  std::shared_ptr<const Plan> plan_for(const memory::desc& md) {
    return *plans_.get_or_build(md, [&] { return build_plan(md); });  // build_plan cannot fail
  }

  std::shared_ptr<Plan> build_plan(const memory::desc& md) {
    std::shared_ptr<Plan> plan;
    try {
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      auto flags = dnnl::normalization_flags::use_global_stats | dnnl::normalization_flags::use_scale |
                   dnnl::normalization_flags::use_shift;
      dnnl::batch_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, md,
                                                   node_.attr_float("epsilon", 1e-5f), flags);
      dnnl::batch_normalization_forward::primitive_desc pd(desc, attr, engine());
      plan = std::make_shared<Plan>();
      plan->prim = dnnl::batch_normalization_forward(pd);
      plan->scratch = pd.scratchpad_desc();
      memory::desc vec({params_[0].numel()}, memory::data_type::f32, memory::format_tag::a);
      for (int k = 0; k < 4; ++k) plan->vec[k] = memory(vec, engine(), const_cast<void*>(params_[static_cast<size_t>(k)].raw_data()));
    } catch (const dnnl::error&) {
      plan = nullptr;
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  std::vector<Tensor> params_;  // scale, B, mean, var: f32 [C]
  std::once_flag folded_once_;
  std::vector<float> s_, t_;  // per-channel scale and shift for our loop, zero-padded to blocks of 16
  ShapePlanCache<Plan, memory::desc> plans_;
};

}  // namespace

std::unique_ptr<NativeOp> make_batchnorm_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "BatchNormalization" || node.inputs.size() < 5) return nullptr;
  if (node.attr_int("training_mode", 0) != 0) return nullptr;
  for (size_t i = 1; i < node.outputs.size(); ++i) if (!node.outputs[i].empty()) return nullptr;  // running stats
  std::vector<Tensor> params;
  for (size_t i = 1; i < 5; ++i) {
    auto it = graph.initializers.find(node.inputs[i]);
    if (it == graph.initializers.end() || it->second.dtype() != DType::kFloat32) return nullptr;
    if (!params.empty() && it->second.numel() != params[0].numel()) return nullptr;
    params.push_back(it->second.reshaped({it->second.numel()}));
  }
  return std::make_unique<BatchNormOp>(node, opset, std::move(params));
}

void register_batchnorm_ops(NativeOpTable& t) {
  t.add({"", "BatchNormalization", 1, kNativeAnyOpset, {DType::kFloat32}, make_batchnorm_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
