// Native GRU (default sigmoid/tanh activations, no clip, full-length sequences). Constant
// weights, one direction, time-major: oneDNN's GRU primitive (dnnl_gru.h). Otherwise our loop:
// the input projection X·Wᵀ for all time steps is one GEMM; each step then needs only H·Rᵀ
// (on pre-transposed weights) and the gate arithmetic, in float, on contiguous rows.
// Everything else the reference kernel covers.
#include <cmath>

#include <omp.h>

#include "devices/cpu/dnnl_gru.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/vector_math.h"
#include "devices/ref/kernels/gemm.h"
#include "graph/checked_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// H is read from R's dims. hidden_size, when the model sets it, must equal it, and 6 x H must fit
// int64 (an empty R may carry any H); otherwise the reference kernel names the problem (this
// kernel ignored hidden_size: kernel_run, stop 15).
bool usable_hidden_size(const Node& node, int64_t H) {
  return H >= 0 && !(CheckedInt64(6) * H).overflowed() && node.attr_int("hidden_size", H) == H;
}

// Sets the calling thread's OpenMP team size (n > 0) until the scope ends.
class OmpThreadsWhile {
 public:
  explicit OmpThreadsWhile(int n) : saved_(omp_get_max_threads()) {
    if (n > 0) omp_set_num_threads(n);
  }
  ~OmpThreadsWhile() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

class GruOp : public NativeOp {
 public:
  // `dnnl` runs the cases it covers (constant weights, one direction, time-major); the loop
  // below runs the rest.
  GruOp(const Node& node, int64_t opset, std::unique_ptr<DnnlGru> dnnl)
      : node_(node), opset_(opset), dnnl_(std::move(dnnl)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    auto at = [&](size_t i) { return i < inputs.size() ? inputs[i] : nullptr; };
    const Tensor* x = plain_f32(at(0));
    const Tensor* w = plain_f32(at(1));
    const Tensor* r = plain_f32(at(2));
    const Tensor* b = plain_f32(at(3));
    const Tensor* h0 = plain_f32(at(5));
    bool layout1 = node_.attr_int("layout", 0) != 0;
    std::string direction = node_.attr_string("direction", "forward");
    int64_t dirs = direction == "bidirectional" ? 2 : 1;
    if (!x || !w || !r || x->rank() != 3 || at(4) || (at(5) && !h0) || (at(3) && !b)) {
      return run_reference(node_, opset_, inputs, outputs);  // sequence_lens or odd inputs
    }
    int64_t seq = layout1 ? x->dim(1) : x->dim(0), batch = layout1 ? x->dim(0) : x->dim(1), in = x->dim(2);
    int64_t H = r->rank() == 3 ? r->dim(2) : 0;
    if (!usable_hidden_size(node_, H)) return run_reference(node_, opset_, inputs, outputs);
    if (w->dims() != Dims{dirs, 3 * H, in} || r->dims() != Dims{dirs, 3 * H, H} ||
        (b && b->dims() != Dims{dirs, 6 * H}) || (h0 && h0->numel() != dirs * batch * H)) {
      return run_reference(node_, opset_, inputs, outputs);  // the reference names the mismatch
    }
    bool lbr = node_.attr_int("linear_before_reset", 0) != 0;
    Tensor y(DType::kFloat32, layout1 ? Dims{batch, seq, dirs, H} : Dims{seq, dirs, batch, H});
    Tensor yh(DType::kFloat32, layout1 ? Dims{batch, dirs, H} : Dims{dirs, batch, H});
    if (dnnl_ && !layout1 && dirs == 1 && seq > 0 && batch > 0) {
      try {
        // One step's product is batch x 3H x H multiply-adds: below ~1M, a second thread
        // costs more in synchronisation per step than it computes.
        OmpThreadsWhile one(batch * 3 * H * H < (int64_t{1} << 20) ? 1 : 0);
        dnnl_->run(*x, h0, y, yh);
        outputs[0] = CpuValue::from_plain(Value(std::move(y)));
        if (outputs.size() > 1) outputs[1] = CpuValue::from_plain(Value(std::move(yh)));
        return Status::OK();
      } catch (const dnnl::error&) {
        // A shape oneDNN refuses: the loop below computes it.
      }
    }
    // Rows of X as [seq*batch, in] in time-major order.
    std::vector<float> xs(static_cast<size_t>(seq * batch * in));
    for (int64_t t = 0; t < seq; ++t) {
      for (int64_t n = 0; n < batch; ++n) {
        const float* src = x->data<float>() + (layout1 ? (n * seq + t) : (t * batch + n)) * in;
        std::copy(src, src + in, xs.begin() + (t * batch + n) * in);
      }
    }
    std::vector<float> xw(static_cast<size_t>(seq * batch * 3 * H)), hr(static_cast<size_t>(batch * 3 * H));
    std::vector<float> h(static_cast<size_t>(batch * H)), hn(h.size()), rh(h.size());
    cand_.assign(static_cast<size_t>(H), 0.f);
    for (int64_t d = 0; d < dirs; ++d) {
      bool reverse = direction == "reverse" || d == 1;
      const float* wd = w->data<float>() + d * 3 * H * in;
      // Rᵀ [H, 3H] once per direction: the per-step GEMMs then stream contiguous rows.
      std::vector<float> rt(static_cast<size_t>(3 * H * H));
      const float* rsrc = r->data<float>() + d * 3 * H * H;
      for (int64_t g = 0; g < 3 * H; ++g) for (int64_t k = 0; k < H; ++k) rt[static_cast<size_t>(k * 3 * H + g)] = rsrc[g * H + k];
      const float* wb = b ? b->data<float>() + d * 6 * H : nullptr;
      const float* rb = b ? wb + 3 * H : nullptr;
      // XW[t, n, :] = x · Wᵀ + Wb for every step at once.
      ref_gemm<float>(seq * batch, 3 * H, in, 1.f, xs.data(), in, false, wd, in, true, 0.f, xw.data(), 3 * H);
      if (wb) for (int64_t i = 0; i < seq * batch; ++i) for (int64_t j = 0; j < 3 * H; ++j) xw[static_cast<size_t>(i * 3 * H + j)] += wb[j];
      for (int64_t n = 0; n < batch; ++n) {
        for (int64_t j = 0; j < H; ++j) {
          h[static_cast<size_t>(n * H + j)] =
              h0 ? h0->data<float>()[layout1 ? (n * dirs + d) * H + j : (d * batch + n) * H + j] : 0.f;
        }
      }
      for (int64_t s = 0; s < seq; ++s) {
        int64_t t = reverse ? seq - 1 - s : s;
        // z and r use H·Rᵀ; the candidate uses (r∘H)·Rᵀ, or r∘(H·Rᵀ + Rbh) with linear_before_reset.
        ref_gemm<float>(batch, lbr ? 3 * H : 2 * H, H, 1.f, h.data(), H, false, rt.data(), 3 * H, false, 0.f, hr.data(), 3 * H);
        for (int64_t n = 0; n < batch; ++n) {
          const float* g = xw.data() + (t * batch + n) * 3 * H;
          const float* hg = hr.data() + n * 3 * H;
          float* z = hn.data() + n * H;  // z, kept for the update below
          float* rr = rh.data() + n * H;  // r
          for (int64_t j = 0; j < H; ++j) {
            z[j] = g[j] + hg[j] + (rb ? rb[j] : 0.f);
            rr[j] = g[H + j] + hg[H + j] + (rb ? rb[H + j] : 0.f);
          }
          sigmoid_inplace(z, H);
          sigmoid_inplace(rr, H);
        }
        if (!lbr) {
          for (size_t i = 0; i < rh.size(); ++i) rh[i] *= h[i];
          ref_gemm<float>(batch, H, H, 1.f, rh.data(), H, false, rt.data() + 2 * H, 3 * H, false, 0.f, hr.data() + 2 * H, 3 * H);
        }
        for (int64_t n = 0; n < batch; ++n) {
          const float* g = xw.data() + (t * batch + n) * 3 * H;
          const float* hg = hr.data() + n * 3 * H;
          float* cand = cand_.data();
          const float* rr = rh.data() + n * H;
          for (int64_t j = 0; j < H; ++j) {
            float rbh = rb ? rb[2 * H + j] : 0.f;
            cand[j] = lbr ? g[2 * H + j] + rr[j] * (hg[2 * H + j] + rbh) : g[2 * H + j] + hg[2 * H + j] + rbh;
          }
          tanh_inplace(cand, H);
          float* out = hn.data() + n * H;
          const float* prev = h.data() + n * H;
          for (int64_t j = 0; j < H; ++j) out[j] = (1 - out[j]) * cand[j] + out[j] * prev[j];
        }
        h.swap(hn);
        for (int64_t n = 0; n < batch; ++n) {
          float* dst = y.data<float>() + (layout1 ? ((n * seq + t) * dirs + d) * H : ((t * dirs + d) * batch + n) * H);
          std::copy(h.begin() + n * H, h.begin() + (n + 1) * H, dst);
        }
      }
      for (int64_t n = 0; n < batch; ++n) {
        float* dst = yh.data<float>() + (layout1 ? (n * dirs + d) * H : (d * batch + n) * H);
        std::copy(h.begin() + n * H, h.begin() + (n + 1) * H, dst);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    if (outputs.size() > 1) outputs[1] = CpuValue::from_plain(Value(std::move(yh)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  std::unique_ptr<DnnlGru> dnnl_;
  thread_local static std::vector<float> cand_;
};

thread_local std::vector<float> GruOp::cand_;

}  // namespace

// oneDNN's GRU for the node when its weights are constant f32 of consistent shapes and it
// runs one direction, time-major, without sequence_lens; nullptr otherwise.
std::unique_ptr<DnnlGru> dnnl_gru_for(const Node& node, const Graph& graph) {
  auto constant = [&](size_t i) -> const Tensor* {
    if (i >= node.inputs.size() || node.inputs[i].empty()) return nullptr;
    auto it = graph.initializers.find(node.inputs[i]);
    return it != graph.initializers.end() && it->second.dtype() == DType::kFloat32 ? &it->second : nullptr;
  };
  std::string direction = node.attr_string("direction", "forward");
  bool has_b = node.inputs.size() > 3 && !node.inputs[3].empty();
  bool has_lens = node.inputs.size() > 4 && !node.inputs[4].empty();
  const Tensor* w = constant(1);
  const Tensor* r = constant(2);
  const Tensor* b = has_b ? constant(3) : nullptr;
  if (!w || !r || (has_b && !b) || has_lens || direction == "bidirectional" || node.attr_int("layout", 0) != 0 ||
      r->rank() != 3 || w->rank() != 3) {
    return nullptr;
  }
  int64_t H = r->dim(2);
  if (!usable_hidden_size(node, H)) return nullptr;
  if (w->dim(0) != 1 || r->dims() != Dims{1, 3 * H, H} || w->dim(1) != 3 * H || (b && b->dims() != Dims{1, 6 * H})) {
    return nullptr;
  }
  return std::make_unique<DnnlGru>(*w, *r, b ? *b : Tensor(), node.attr_int("linear_before_reset", 0) != 0,
                                   direction == "reverse");
}

std::unique_ptr<NativeOp> make_gru_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "GRU" || node.attr_float("clip", 0.0f) != 0.0f) return nullptr;
  std::vector<std::string> acts = node.attr_strings("activations");
  for (size_t i = 0; i < acts.size(); ++i) {
    if (acts[i] != (i % 2 == 0 ? "Sigmoid" : "Tanh")) return nullptr;
  }
  return std::make_unique<GruOp>(node, opset, dnnl_gru_for(node, graph));
}

void register_gru_ops(NativeOpTable& t) {
  t.add({"", "GRU", 1, kNativeAnyOpset, {DType::kFloat32}, make_gru_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
