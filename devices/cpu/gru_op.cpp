// Native GRU (default sigmoid/tanh activations, no clip, full-length sequences). Batches above
// kLoopMaxBatch with constant weights, time-major: oneDNN's GRU primitive (dnnl_gru.h), one per
// direction. Otherwise our loop: the input projection X·Wᵀ for all time steps is one product;
// each step then needs only H·Rᵀ and the gate arithmetic, in float. Wᵀ and Rᵀ are packed into
// column panels (rows_times_matrix.h) once for constant weights, per run otherwise.
// Everything else the reference kernel covers.
#include <cmath>

#include "devices/cpu/dnnl_gru.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/omp_threads_while.h"
#include "devices/cpu/recurrent_directions.h"
#include "devices/cpu/recurrent_loop.h"
#include "devices/cpu/rows_times_matrix.h"
#include "devices/cpu/vector_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Our loop runs batches up to kLoopMaxBatch, oneDNN's GRU the larger ones it can run. Measured
// (bench/recurrent_probe.py gru_forward, 50 steps, linear_before_reset=1, Xeon with AVX-512,
// load 7-8, stop 17), minimum of the loop against oneDNN's at 1 thread: batch 1 0.117 against
// 0.149 ms at H 128, 0.386 against 0.502 at H 256; batch 4 0.256 against 0.266 (H 128), 0.750
// against 0.758 (H 256); batch 8 0.507 against 0.487, 1.53 against 1.42; batch 16 1.04 against
// 0.95, 3.16 against 2.83. At 2 threads (forward and bidirectional) the loop was faster at
// batch 1 (0.117 against 0.150 ms, H 128) and as fast or faster at batch 4.
constexpr int64_t kLoopMaxBatch = 4;

class GruOp : public NativeOp {
 public:
  // `dnnl`, one per direction, runs the cases it covers (constant weights, time-major); the
  // loop below runs the rest. `packed`: constant weights packed once (empty: packed per run):
  // all of Wᵀ, Rᵀ's z and r columns [H, 2H], and its h columns [H, H] (with
  // linear_before_reset=0 they multiply r∘H, known only after z and r).
  GruOp(const Node& node, int64_t opset, std::vector<std::unique_ptr<DnnlGru>> dnnl, PackedRecurrentWeights packed)
      : node_(node), opset_(opset), dnnl_(std::move(dnnl)), packed_(std::move(packed)) {}

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
    if (!usable_hidden_size(node_, 3, H)) return run_reference(node_, opset_, inputs, outputs);
    if (w->dims() != Dims{dirs, 3 * H, in} || r->dims() != Dims{dirs, 3 * H, H} ||
        (b && b->dims() != Dims{dirs, 6 * H}) || (h0 && h0->numel() != dirs * batch * H)) {
      return run_reference(node_, opset_, inputs, outputs);  // the reference names the mismatch
    }
    bool lbr = node_.attr_int("linear_before_reset", 0) != 0;
    Tensor y(DType::kFloat32, layout1 ? Dims{batch, seq, dirs, H} : Dims{seq, dirs, batch, H});
    Tensor yh(DType::kFloat32, layout1 ? Dims{batch, dirs, H} : Dims{dirs, batch, H});
    if (static_cast<int64_t>(dnnl_.size()) == dirs && !layout1 && seq > 0 && batch > kLoopMaxBatch) {
      try {
        OmpThreadsWhile team(recurrent_step_team(batch, 3, H));
        if (dirs == 1) {
          dnnl_[0]->run(*x, h0, y, yh);
        } else {
          run_dnnl_bidirectional(*x, h0, seq, batch, H, y, yh);
        }
        return set_recurrent_outputs(outputs, std::move(y), std::move(yh));
      } catch (const dnnl::error&) {
        // A shape oneDNN refuses: the loop below computes it.
      }
    }
    count_recurrent_loop_run();
    const RecurrentShape shape = recurrent_shape(*x, *r, layout1);
    ScratchCharge xw_charge(projection_elements(*x, 3 * H), sizeof(float), "a GRU's input projection");
    ProjectionBuffer xw;
    std::vector<float> hr(static_cast<size_t>(batch * 3 * H));
    std::vector<float> h(static_cast<size_t>(batch * H)), hn(h.size()), rh(h.size());
    cand_.assign(static_cast<size_t>(H), 0.f);
    PackedRecurrentWeights local;
    if (!packed_.packed_from(*w, *r)) local = pack_recurrent_weights(*w, *r, {2 * H, H});
    const PackedRecurrentWeights& pw = packed_.packed_from(*w, *r) ? packed_ : local;
    InterruptPoll poll = recurrent_poll();
    const int64_t step_work = batch * 3 * H * (H + 1);  // H·Rᵀ's products, then the gates
    for (int64_t d = 0; d < dirs; ++d) {
      bool reverse = direction == "reverse" || d == 1;
      const size_t di = static_cast<size_t>(d);
      const float* wb = b ? b->data<float>() + d * 6 * H : nullptr;
      const float* rb = b ? wb + 3 * H : nullptr;
      const Panels& r_zr = pw.r[di][0];
      const Panels& r_h = pw.r[di][1];
      // XW[t, n, :] = x · Wᵀ + Wb for every step at once.
      RETURN_IF_ERROR(project_inputs(*x, pw.w[di], 3 * H, wb, xw, poll));
      load_state(h0, shape, d, h.data());
      for (int64_t s = 0; s < seq; ++s) {
        RETURN_IF_ERROR(poll.tick(step_work));
        int64_t t = reverse ? seq - 1 - s : s;
        // z and r use H·Rᵀ; the candidate uses (r∘H)·Rᵀ, or r∘(H·Rᵀ + Rbh) with linear_before_reset.
        rows_times_panels(h.data(), batch, H, H, r_zr.data(), 2 * H, hr.data(), 3 * H);
        if (lbr) rows_times_panels(h.data(), batch, H, H, r_h.data(), H, hr.data() + 2 * H, 3 * H);
        for (int64_t n = 0; n < batch; ++n) {
          const float* g = xw.data() + shape.x_row(t, n) * 3 * H;
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
          rows_times_panels(rh.data(), batch, H, H, r_h.data(), H, hr.data() + 2 * H, 3 * H);
        }
        for (int64_t n = 0; n < batch; ++n) {
          const float* g = xw.data() + shape.x_row(t, n) * 3 * H;
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
          std::copy(h.begin() + n * H, h.begin() + (n + 1) * H, y.data<float>() + shape.y_offset(t, d, n));
        }
      }
      store_state(h.data(), shape, d, yh);
    }
    return set_recurrent_outputs(outputs, std::move(y), std::move(yh));
  }

 private:
  Node node_;
  int64_t opset_;
  // Each direction on its own oneDNN GRU (forward, then reverse), written into its slots of
  // y [seq, 2, batch, H] and y_h [2, batch, H]. oneDNN's bidirectional primitive would need
  // both directions' weights in one reorder; two one-direction plans reuse dnnl_gru.h as is.
  void run_dnnl_bidirectional(const Tensor& x, const Tensor* h0, int64_t seq, int64_t batch, int64_t H, Tensor& y,
                              Tensor& yh) {
    for (int64_t d = 0; d < 2; ++d) {
      Tensor yd(DType::kFloat32, Dims{seq, 1, batch, H}), yhd(DType::kFloat32, Dims{1, batch, H});
      Tensor h0d = h0 ? direction_slice(*h0, d) : Tensor();
      dnnl_[static_cast<size_t>(d)]->run(x, h0 ? &h0d : nullptr, yd, yhd);
      write_direction_sequence(yd, d, y);
      write_direction_state(yhd, d, yh);
    }
  }

  std::vector<std::unique_ptr<DnnlGru>> dnnl_;
  PackedRecurrentWeights packed_;
  thread_local static std::vector<float> cand_;
};

thread_local std::vector<float> GruOp::cand_;

}  // namespace

// oneDNN's GRUs for the node, one per direction (a bidirectional node: forward on W[0],
// reverse on W[1]), when its weights are constant f32 of consistent shapes and it runs
// time-major without sequence_lens; none otherwise.
std::vector<std::unique_ptr<DnnlGru>> dnnl_grus_for(const Node& node, const Graph& graph) {
  auto constant = [&](size_t i) { return constant_f32_input(node, graph, i); };
  std::string direction = node.attr_string("direction", "forward");
  bool has_b = node.inputs.size() > 3 && !node.inputs[3].empty();
  bool has_lens = node.inputs.size() > 4 && !node.inputs[4].empty();
  const Tensor* w = constant(1);
  const Tensor* r = constant(2);
  const Tensor* b = has_b ? constant(3) : nullptr;
  std::vector<std::unique_ptr<DnnlGru>> grus;
  if (!w || !r || (has_b && !b) || has_lens || node.attr_int("layout", 0) != 0 || r->rank() != 3 || w->rank() != 3) {
    return grus;
  }
  const int64_t dirs = direction == "bidirectional" ? 2 : 1, H = r->dim(2), in = w->dim(2);
  if (!usable_hidden_size(node, 3, H) || w->dims() != Dims{dirs, 3 * H, in} || r->dims() != Dims{dirs, 3 * H, H} ||
      (b && b->dims() != Dims{dirs, 6 * H})) {
    return grus;
  }
  const bool lbr = node.attr_int("linear_before_reset", 0) != 0;
  for (int64_t d = 0; d < dirs; ++d) {
    grus.push_back(std::make_unique<DnnlGru>(direction_slice(*w, d), direction_slice(*r, d),
                                             b ? direction_slice(*b, d) : Tensor(), lbr,
                                             direction == "reverse" || d == 1));
  }
  return grus;
}

std::unique_ptr<NativeOp> make_gru_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "GRU" || node.attr_float("clip", 0.0f) != 0.0f) return nullptr;
  std::vector<std::string> acts = node.attr_strings("activations");
  for (size_t i = 0; i < acts.size(); ++i) {
    if (acts[i] != (i % 2 == 0 ? "Sigmoid" : "Tanh")) return nullptr;
  }
  PackedRecurrentWeights packed;
  auto constant = [&](size_t i) { return constant_f32_input(node, graph, i); };
  const Tensor* w = constant(1);
  const Tensor* r = constant(2);
  std::vector<std::unique_ptr<DnnlGru>> dnnl = dnnl_grus_for(node, graph);
  // Our loop's packed weights, made once (small batches run the loop even where oneDNN could);
  // consistent shapes only (run() checks them again): W [dirs, 3H, in], R [dirs, 3H, H].
  if (w && r && w->rank() == 3 && r->rank() == 3 && w->dim(0) == r->dim(0) &&
      w->dim(1) == r->dim(1) && r->dim(1) == 3 * r->dim(2)) {
    packed = pack_recurrent_weights(*w, *r, {2 * r->dim(2), r->dim(2)});
  }
  return std::make_unique<GruOp>(node, opset, std::move(dnnl), std::move(packed));
}

void register_gru_ops(NativeOpTable& t) {
  t.add({"", "GRU", 1, kNativeAnyOpset, {DType::kFloat32}, make_gru_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
