// Native pyflame_rt.SqueezeExcite (compiler/passes/squeeze_excite_fusion.h) on f32 4-D input in
// any layout it arrives in: a channel-blocked one (nChw8c/nChw16c, a convolution's output) or
// plain NCHW. One step and one parallel region: the mean per channel (split over the team when
// large), the two small products and their activations on one thread (at most ~0.2 M
// multiply-adds, EfficientNet-B0's largest), then X scaled per channel, over X itself when this
// is its last read.
#include <omp.h>

#include <cmath>

#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// Below this many elements of X the pool and the scaling stay on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// The channel block (8 or 16) when `md` is f32 nChw8c/nChw16c (padded or not) for 4-D `dims`,
// else 0.
int64_t channel_block(const memory::desc& md, const Dims& dims) {
  for (auto [block, tag] : {std::pair<int64_t, memory::format_tag>{8, memory::format_tag::aBcd8b},
                            std::pair<int64_t, memory::format_tag>{16, memory::format_tag::aBcd16b}}) {
    if (md == memory::desc(to_dnnl(dims), memory::data_type::f32, tag)) return block;
  }
  return 0;
}

enum class Act { kNone, kRelu, kSiLU, kSigmoid, kHardSigmoid };

bool parse_act(const std::string& s, Act* a) {
  if (s.empty()) *a = Act::kNone;
  else if (s == "Relu") *a = Act::kRelu;
  else if (s == "SiLU") *a = Act::kSiLU;
  else if (s == "Sigmoid") *a = Act::kSigmoid;
  else if (s == "HardSigmoid") *a = Act::kHardSigmoid;
  else return false;
  return true;
}

float apply(Act a, float v, float alpha, float beta) {
  switch (a) {
    case Act::kNone: return v;
    case Act::kRelu: return v > 0.f ? v : 0.f;
    case Act::kSiLU: return v / (1.f + std::exp(-v));
    case Act::kSigmoid: return 1.f / (1.f + std::exp(-v));
    case Act::kHardSigmoid: return std::max(0.f, std::min(1.f, alpha * v + beta));
  }
  return v;
}

class SqueezeExciteOp : public NativeOp {
 public:
  SqueezeExciteOp(const Node& node, int64_t opset, Act act, Act gate, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
      : node_(node), opset_(opset), act_(act), gate_(gate), w1_(std::move(w1)), b1_(std::move(b1)),
        w2_(std::move(w2)), b2_(std::move(b2)) {
    const std::vector<float> p = node.attr_floats("gate_params");
    alpha_ = p.size() > 0 ? p[0] : 0.2f;
    beta_ = p.size() > 1 ? p[1] : 0.5f;
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    const bool f32 = x && (x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32));
    const Dims xd = !f32 ? Dims{} : x->has_native ? x->dims : x->plain.tensor.dims();
    const int64_t channels = w1_.dim(1), hidden = w1_.dim(0);
    if (!f32 || xd.size() != 4 || xd[1] != channels || num_elements(xd) == 0) {
      return run_reference(node_, opset_, inputs, outputs);  // it names the mismatch
    }
    const memory::desc md = x->has_native ? x->native.get_desc() : plain_desc(xd);
    const int64_t block = md == plain_desc(xd) ? 1 : channel_block(md, xd);
    if (block == 0) return run_reference(node_, opset_, inputs, outputs);
    memory src = x->as_native(md);
    const float* xp = static_cast<const float*>(src.get_data_handle());
    // Channels padded to whole blocks (the padding holds zeros and gets a zero gate).
    const int64_t padded = (channels + block - 1) / block * block;
    const int64_t n = xd[0], hw = xd[2] * xd[3], runs = n * padded / block;  // runs of hw * block floats
    const bool parallel = num_elements(xd) >= kParallelElements && omp_get_max_threads() > 1;
    std::vector<float> mean(static_cast<size_t>(n * padded)), hidden_v(static_cast<size_t>(hidden)),
        gate(static_cast<size_t>(n * padded), 0.f);
    const std::vector<float> zero(static_cast<size_t>(block), 0.f);
    // Y over X when nothing reads X after this step (allocated here, on the run's thread: the
    // buffer pool is the calling thread's).
    const bool in_place = x->last_use && x->has_native && !OutputDestination::pending();
    CpuValue out = in_place ? CpuValue::from_native(src, xd, x->buffer) : CpuValue::allocate_native(md, xd);
    float* yp = static_cast<float*>(out.native.get_data_handle());
    // One parallel region for the whole step (a fork and join cost more than the excite's
    // products compute, and far more when the second thread sleeps: the passive wait policy).
#pragma omp parallel if (parallel)
    {
      // Squeeze: the mean of each (image, channel).
#pragma omp for schedule(static)
      for (int64_t r = 0; r < runs; ++r) channel_mean_f32(xp + r * hw * block, mean.data() + r * block, hw, block);
      // Excite: two small products per image on one thread; the others wait at its barrier.
#pragma omp single
      excite(mean.data(), hidden_v.data(), gate.data(), n, channels, hidden, padded);
      // Scale: X * gate.
#pragma omp for schedule(static)
      for (int64_t r = 0; r < runs; ++r) {
        channel_affine_f32(xp + r * hw * block, yp + r * hw * block, gate.data() + r * block, zero.data(), hw, block,
                           false);
      }
    }
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  // gate[b * padded + c] = gate(W2 . act(W1 . mean_b + B1) + B2)[c] for each image b.
  void excite(const float* mean, float* hidden_v, float* gate, int64_t n, int64_t channels, int64_t hidden,
              int64_t padded) const {
    const float* w1 = w1_.data<float>();
    const float* w2 = w2_.data<float>();
    for (int64_t b = 0; b < n; ++b) {
      const float* g = mean + b * padded;
      for (int64_t o = 0; o < hidden; ++o) {
        hidden_v[o] = apply(act_, b1_.data<float>()[o] + dot_f32(w1 + o * channels, g, channels), 0.f, 0.f);
      }
      for (int64_t c = 0; c < channels; ++c) {
        gate[b * padded + c] = apply(gate_, b2_.data<float>()[c] + dot_f32(w2 + c * hidden, hidden_v, hidden), alpha_, beta_);
      }
    }
  }

  Node node_;
  int64_t opset_;
  Act act_, gate_;
  Tensor w1_, b1_, w2_, b2_;
  float alpha_ = 0.2f, beta_ = 0.5f;
};

const Tensor* f32_constant(const Graph& graph, const Node& node, size_t i) {
  if (node.inputs.size() <= i) return nullptr;
  auto it = graph.initializers.find(node.inputs[i]);
  return it != graph.initializers.end() && it->second.dtype() == DType::kFloat32 ? &it->second : nullptr;
}

std::unique_ptr<NativeOp> make_squeeze_excite_op(const Node& node, int64_t opset, const Graph& graph) {
  Act act, gate;
  if (!parse_act(node.attr_string("activation", ""), &act) || !parse_act(node.attr_string("gate", "Sigmoid"), &gate)) {
    return nullptr;
  }
  const Tensor *w1 = f32_constant(graph, node, 1), *b1 = f32_constant(graph, node, 2);
  const Tensor *w2 = f32_constant(graph, node, 3), *b2 = f32_constant(graph, node, 4);
  if (!w1 || !b1 || !w2 || !b2 || w1->rank() != 4 || w2->rank() != 4 || w1->dim(2) * w1->dim(3) != 1 ||
      w2->dim(2) * w2->dim(3) != 1 || w2->dim(0) != w1->dim(1) || w2->dim(1) != w1->dim(0) ||
      b1->numel() != w1->dim(0) || b2->numel() != w2->dim(0)) {
    return nullptr;  // weights computed at run time or of other shapes: the reference kernel
  }
  return std::make_unique<SqueezeExciteOp>(node, opset, act, gate, *w1, *b1, *w2, *b2);
}

}  // namespace

void register_squeeze_excite_ops(NativeOpTable& t) {
  t.add({"pyflame_rt", "SqueezeExcite", 1, kNativeAnyOpset, {DType::kFloat32}, make_squeeze_excite_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
