// Native pyflame_rt.SqueezeExcite (compiler/passes/squeeze_excite_fusion.h) on f32 input of
// rank 3-5 (1-D to 3-D feature maps) in any layout it arrives in: channel-blocked (nChw8c /
// nChw16c and their 1-D and 3-D forms, a convolution's output on the blocked path), channels-last
// (nwc, nhwc, ndhwc: oneDNN's choice for 1-D convolutions) or plain. One step and one parallel
// region: the mean per channel (split over the team when large), the two small products and
// their activations on one thread (at most ~0.2 M multiply-adds, EfficientNet-B0's largest),
// then X scaled per channel, over X itself when this is its last read.
#include <omp.h>

#include <algorithm>
#include <cmath>

#include "devices/cpu/loop_kernels.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/vector_math.h"
#include "devices/target_clones.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// Below this many elements of X the pool and the scaling stay on the calling thread.
constexpr int64_t kParallelElements = int64_t{1} << 15;

// The channel block (8 or 16) when `md` is f32 channel-blocked (padded or not) for `dims` of
// rank 3-5, else 0.
int64_t channel_block(const memory::desc& md, const Dims& dims) {
  using tag = memory::format_tag;
  static const tag k8[] = {tag::aBc8b, tag::aBcd8b, tag::aBcde8b}, k16[] = {tag::aBc16b, tag::aBcd16b, tag::aBcde16b};
  const size_t r = dims.size() - 3;
  for (auto [block, t] : {std::pair<int64_t, tag>{8, k8[r]}, std::pair<int64_t, tag>{16, k16[r]}}) {
    if (md == memory::desc(to_dnnl(dims), memory::data_type::f32, t)) return block;
  }
  return 0;
}

// Whether `md` is f32 channels-last (nwc, nhwc, ndhwc) for `dims` of rank 3-5.
bool channels_last(const memory::desc& md, const Dims& dims) {
  using tag = memory::format_tag;
  static const tag kTags[] = {tag::acb, tag::acdb, tag::acdeb};
  return md == memory::desc(to_dnnl(dims), memory::data_type::f32, kTags[dims.size() - 3]);
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

// g[i] = b[i] + sum over o of h[o] * wt[o * stride + i], i in [0, n): a piece of the gate's
// product, one vector pass per hidden unit.
PFRT_TARGET_CLONES void gate_products(const float* wt, int64_t stride, const float* h, int64_t hidden, const float* b,
                                      float* g, int64_t n) {
  std::copy(b, b + n, g);
  for (int64_t o = 0; o < hidden; ++o) {
    const float ho = h[o];
    const float* row = wt + o * stride;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) g[i] += ho * row[i];
  }
}

class SqueezeExciteOp : public NativeOp {
 public:
  SqueezeExciteOp(const Node& node, int64_t opset, Act act, Act gate, Tensor w1, Tensor b1, Tensor w2, Tensor b2)
      : node_(node), opset_(opset), act_(act), gate_(gate), w1_(std::move(w1)), b1_(std::move(b1)),
        w2_(std::move(w2)), b2_(std::move(b2)) {
    const std::vector<float> p = node.attr_floats("gate_params");
    alpha_ = p.size() > 0 ? p[0] : 0.2f;
    beta_ = p.size() > 1 ? p[1] : 0.5f;
    const int64_t channels = w2_.dim(0), hidden = w2_.dim(1);
    w2t_.resize(static_cast<size_t>(channels * hidden));
    for (int64_t c = 0; c < channels; ++c) {
      for (int64_t o = 0; o < hidden; ++o) w2t_[static_cast<size_t>(o * channels + c)] = w2_.data<float>()[c * hidden + o];
    }
  }

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    CpuValue* x = inputs[0];
    const bool f32 = x && (x->has_native || (x->plain.is_tensor() && x->plain.tensor.dtype() == DType::kFloat32));
    const Dims xd = !f32 ? Dims{} : x->has_native ? x->dims : x->plain.tensor.dims();
    const int64_t channels = w1_.dim(1), hidden = w1_.dim(0);
    if (!f32 || xd.size() != w1_.rank() || xd[1] != channels || num_elements(xd) == 0) {
      return run_reference(node_, opset_, inputs, outputs);  // it names the mismatch
    }
    const memory::desc md = x->has_native ? x->native.get_desc() : plain_desc(xd);
    const bool last = channels_last(md, xd);
    const int64_t block = md == plain_desc(xd) ? 1 : last ? 0 : channel_block(md, xd);
    if (block == 0 && !last) return run_reference(node_, opset_, inputs, outputs);
    memory src = x->as_native(md);
    const float* xp = static_cast<const float*>(src.get_data_handle());
    const int64_t n = xd[0], positions = num_elements(xd) / (n * channels);
    // Channels padded to whole blocks (the padding holds zeros and gets a zero gate).
    const int64_t padded = last ? channels : (channels + block - 1) / block * block;
    const bool parallel = num_elements(xd) >= kParallelElements && omp_get_max_threads() > 1;
    std::vector<float> mean(static_cast<size_t>(n * padded)), hidden_v(static_cast<size_t>(hidden)),
        gate(static_cast<size_t>(n * padded), 0.f);
    std::vector<float> partial(last ? static_cast<size_t>(channels * (parallel ? omp_get_max_threads() : 1)) : 0);
    // Y over X when nothing reads X after this step (allocated here, on the run's thread: the
    // buffer pool is the calling thread's).
    const bool in_place = x->last_use && x->has_native && !OutputDestination::pending();
    CpuValue out = in_place ? CpuValue::from_native(src, xd, x->buffer) : CpuValue::allocate_native(md, xd);
    float* yp = static_cast<float*>(out.native.get_data_handle());
    // One parallel region for the whole step (a fork and join cost more than the excite's
    // products compute, and far more when the second thread sleeps: the passive wait policy).
#pragma omp parallel if (parallel)
    {
      if (last) {
        squeeze_channels_last(xp, mean.data(), partial.data(), n, positions, channels);
      } else {
        // Squeeze: the mean of each (image, channel block), one run of positions * block floats.
        const int64_t runs = n * padded / block;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < runs; ++r) {
          channel_mean_f32(xp + r * positions * block, mean.data() + r * block, positions, block);
        }
      }
      // Excite: two small products per image on one thread; the others wait at its barrier.
      excite(mean.data(), hidden_v.data(), gate.data(), n, channels, hidden, padded);
      if (last) {
        // Scale: each image's rows of `channels` floats times its gate, rows split over the team.
#pragma omp for schedule(static)
        for (int64_t row = 0; row < n * positions; ++row) {
          scale_row_f32(xp + row * channels, yp + row * channels, gate.data() + row / positions * channels, channels);
        }
      } else {
        const int64_t runs = n * padded / block;
        const std::vector<float> zero(static_cast<size_t>(block), 0.f);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < runs; ++r) {
          channel_affine_f32(xp + r * positions * block, yp + r * positions * block, gate.data() + r * block,
                             zero.data(), positions, block, false);
        }
      }
    }
    outputs[0] = std::move(out);
    return Status::OK();
  }

 private:
  // mean[b * channels + c] for channels-last X (each image `positions` rows of `channels`
  // floats), inside the caller's parallel region: each thread sums its share of the rows
  // (where the convolution before wrote them, so in its own core's cache) into `partial`
  // (`channels` floats per thread), and one thread adds the shares up.
  static void squeeze_channels_last(const float* x, float* mean, float* partial, int64_t n, int64_t positions,
                                    int64_t channels) {
    const int64_t threads = omp_get_num_threads(), me = omp_get_thread_num();
    for (int64_t b = 0; b < n; ++b) {
      const int64_t per = (positions + threads - 1) / threads;
      const int64_t r0 = std::min(positions, me * per), r1 = std::min(positions, (me + 1) * per);
      float* mine = partial + me * channels;
      std::fill(mine, mine + channels, 0.f);
      if (r0 < r1) rows_sum_f32(x + (b * positions + r0) * channels, mine, r1 - r0, channels);
#pragma omp barrier
#pragma omp single
      {
        const float scale = 1.f / static_cast<float>(positions);
        for (int64_t c = 0; c < channels; ++c) {
          float sum = 0.f;
          for (int64_t t = 0; t < threads; ++t) sum += partial[t * channels + c];
          mean[b * channels + c] = sum * scale;
        }
      }
    }
  }

  // gate[b * padded + c] = gate(W2 . act(W1 . mean_b + B1) + B2)[c] for each image b, inside
  // the caller's parallel region: the hidden layer (a few dozen dot products) on one thread,
  // the gate's channels split over the team, each chunk as `hidden` vector passes over W2's
  // transposed rows and one vector pass of the gate. (One thread and a dot product per channel
  // took EfficientNet-B0's 1152-channel blocks ~10 us of their ~48.)
  void excite(const float* mean, float* hidden_v, float* gate, int64_t n, int64_t channels, int64_t hidden,
              int64_t padded) const {
    const float* w1 = w1_.data<float>();
    const int64_t chunks = (channels + kGateChunk - 1) / kGateChunk;
    for (int64_t b = 0; b < n; ++b) {
      const float* g = mean + b * padded;
#pragma omp single
      for (int64_t o = 0; o < hidden; ++o) {
        hidden_v[o] = apply(act_, b1_.data<float>()[o] + dot_f32(w1 + o * channels, g, channels), 0.f, 0.f);
      }
#pragma omp for schedule(static)
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const int64_t c0 = chunk * kGateChunk, count = std::min(kGateChunk, channels - c0);
        float* out = gate + b * padded + c0;
        gate_products(w2t_.data() + c0, channels, hidden_v, hidden, b2_.data<float>() + c0, out, count);
        if (gate_ == Act::kSigmoid) {
          sigmoid_inplace(out, count);
        } else {
          for (int64_t c = 0; c < count; ++c) out[c] = apply(gate_, out[c], alpha_, beta_);
        }
      }
    }
  }

  // Channels per piece of the gate's work (four cache lines of each W2 row).
  static constexpr int64_t kGateChunk = 64;

  Node node_;
  int64_t opset_;
  Act act_, gate_;
  Tensor w1_, b1_, w2_, b2_;
  std::vector<float> w2t_;  // W2 transposed: [hidden][channels]
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
  const auto pointwise = [](const Tensor* w) {
    if (!w || w->rank() < 3 || w->rank() > 5) return false;
    for (size_t d = 2; d < w->rank(); ++d) if (w->dim(d) != 1) return false;
    return true;
  };
  if (!pointwise(w1) || !pointwise(w2) || !b1 || !b2 || w1->rank() != w2->rank() || w2->dim(0) != w1->dim(1) ||
      w2->dim(1) != w1->dim(0) || b1->numel() != w1->dim(0) || b2->numel() != w2->dim(0)) {
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
