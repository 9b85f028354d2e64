// Native LSTM. Two kernels:
// - our loop (recurrent_loop.h): the input projection X·Wᵀ + B for all steps at once, then per
//   step H·Rᵀ on Rᵀ packed into column panels (rows_times_matrix.h) and the gates in float.
//   Every LSTM: run-time or constant weights, either layout, sequence_lens, peepholes (P),
//   clip, input_forget, any of ONNX's activations.
// - oneDNN's LSTM primitive per direction (dnnl_lstm.h), for constant weights, time-major,
//   default activations and none of the above, at batches above kLoopMaxBatch (faster there),
//   made on the first such run.
// Before stop 15 every LSTM ran on the reference kernel; at stop 15 oneDNN's primitive took
// 1.2-1.6x ONNX Runtime's time for 50 steps of H 128 at batch 1 (docs/performance.md).
#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include "devices/cpu/dnnl_lstm.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/omp_threads_while.h"
#include "devices/cpu/recurrent_activation.h"
#include "devices/cpu/recurrent_directions.h"
#include "devices/cpu/recurrent_loop.h"

namespace pyflame_rt {
namespace cpu {

namespace {

const std::vector<std::string> kDefaultActivations = {"Sigmoid", "Tanh", "Tanh"};

void clip_inplace(float* x, int64_t n, float clip) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::max(-clip, std::min(clip, x[i]));
}

// Our loop runs batches up to kLoopMaxBatch, oneDNN's primitive the larger ones it can run.
// Measured (bench/recurrent_probe.py, 50 steps, 1 thread, Xeon with AVX-512, load 9-11, stop
// 16), p50 of the loop against oneDNN's: batch 1 0.11 against 0.21 ms at H 128, 0.39 against
// 0.59 at H 256, 14.4 against 19.0 at H 512; batch 4 0.78 against 0.92 at H 256; batch 2 and 8
// at H 256 tied; batch 16 H 128 1.11 against 0.93 (from there oneDNN's blocked products
// compute more per load than the loop's four rows).
constexpr int64_t kLoopMaxBatch = 8;

class LstmOp : public NativeOp {
 public:
  // `dnnl_weights`: W, R and B (B may be undefined) when oneDNN's LSTM can run the node (it is
  // made from them on the first run that wants it), else W undefined; `packed`: constant
  // weights packed once for our loop (empty: packed per run); `acts`: three per direction.
  LstmOp(const Node& node, int64_t opset, std::vector<Tensor> dnnl_weights, PackedRecurrentWeights packed,
         std::vector<RecurrentActivation> acts)
      : node_(node), opset_(opset), dnnl_weights_(std::move(dnnl_weights)), packed_(std::move(packed)),
        acts_(std::move(acts)),
        dirs_(node.attr_string("direction", "forward") == "bidirectional" ? 2 : 1),
        reverse_only_(node.attr_string("direction", "forward") == "reverse"),
        clip_(node.attr_float("clip", 0.0f)),
        input_forget_(node.attr_int("input_forget", 0) != 0) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    RecurrentInputs in;
    if (!read_recurrent_inputs(inputs, &in)) return run_reference(node_, opset_, inputs, outputs);  // odd inputs
    const Tensor *x = in.x, *w = in.w, *r = in.r, *b = in.b, *h0 = in.h0, *c0 = in.c0, *p = in.p;
    const RecurrentShape s = recurrent_shape(*x, *r, node_.attr_int("layout", 0) != 0);
    const int64_t H = s.H, dirs = dirs_;
    std::vector<int64_t> lens;
    if (s.dirs != dirs || H <= 0 || s.seq <= 0 || s.batch <= 0 || !usable_hidden_size(node_, 4, H) ||
        w->dims() != Dims{dirs, 4 * H, s.in} || r->dims() != Dims{dirs, 4 * H, H} ||
        (b && b->dims() != Dims{dirs, 8 * H}) || (h0 && h0->dims() != s.state_dims()) ||
        (c0 && c0->dims() != s.state_dims()) || (p && p->dims() != Dims{dirs, 3 * H}) ||
        !read_sequence_lens(in.lens, s, &lens)) {
      return run_reference(node_, opset_, inputs, outputs);  // a mismatch (or an empty run)
    }
    Tensor y(DType::kFloat32, s.y_dims());
    Tensor yh(DType::kFloat32, s.state_dims()), yc(DType::kFloat32, s.state_dims());
    if (s.batch > kLoopMaxBatch && dnnl_weights_[0].defined() && !s.layout1 && lens.empty() && !p) {
      try {
        std::call_once(dnnl_once_, [&] { make_dnnl(); });
        OmpThreadsWhile team(recurrent_step_team(s.batch, 4, H));
        if (dirs == 1) {
          dnnl_[0]->run(*x, h0, c0, y, yh, yc);
        } else {
          run_dnnl_bidirectional(*x, h0, c0, y, yh, yc);
        }
        return set_recurrent_outputs(outputs, std::move(y), std::move(yh), std::move(yc));
      } catch (const dnnl::error&) {
        // A shape oneDNN refuses: our loop computes it.
      }
    }
    RETURN_IF_ERROR(run_loop(*x, *w, *r, b, h0, c0, p, s, lens, y, yh, yc));
    return set_recurrent_outputs(outputs, std::move(y), std::move(yh), std::move(yc));
  }

 private:
  // Fails only when the run must stop (its deadline, terminate, stop_all_runs).
  Status run_loop(const Tensor& x, const Tensor& w, const Tensor& r, const Tensor* b, const Tensor* h0,
                  const Tensor* c0, const Tensor* p, const RecurrentShape& s, const std::vector<int64_t>& lens,
                  Tensor& y, Tensor& yh, Tensor& yc) {
    count_recurrent_loop_run();
    const int64_t H = s.H, cols = 4 * H;
    const bool want_y = !node_.outputs.empty() && !node_.outputs[0].empty();
    // Positions past a row's length are zeros (ONNX); without sequence_lens every one is written.
    if (want_y && !lens.empty()) std::fill(y.data<float>(), y.data<float>() + y.numel(), 0.f);
    PackedRecurrentWeights local;
    if (!packed_.packed_from(w, r)) local = pack_recurrent_weights(w, r, {cols});
    const PackedRecurrentWeights& pw = packed_.packed_from(w, r) ? packed_ : local;
    ScratchCharge xw_charge(projection_elements(x, cols), sizeof(float), "an LSTM's input projection");
    Scratch sc;
    sc.h.resize(static_cast<size_t>(s.batch * H));
    sc.c.resize(sc.h.size());
    sc.bias.resize(static_cast<size_t>(cols));
    InterruptPoll poll = recurrent_poll();
    for (int64_t d = 0; d < s.dirs; ++d) {
      const size_t di = static_cast<size_t>(d);
      if (b) {  // ONNX B is [Wb_i Wb_o Wb_f Wb_c Rb_i Rb_o Rb_f Rb_c]: each gate only sees Wb + Rb.
        const float* wb = b->data<float>() + d * 2 * cols;
        for (int64_t j = 0; j < cols; ++j) sc.bias[static_cast<size_t>(j)] = wb[j] + wb[cols + j];
      }
      RETURN_IF_ERROR(project_inputs(x, pw.w[di], cols, b ? sc.bias.data() : nullptr, sc.xw, poll));
      load_state(h0, s, d, sc.h.data());
      load_state(c0, s, d, sc.c.data());
      const RecurrentActivation& f = acts_[3 * di];
      const RecurrentActivation& g = acts_[3 * di + 1];
      const RecurrentActivation& h_act = acts_[3 * di + 2];
      const float* pi = p ? p->data<float>() + d * 3 * H : nullptr;  // P is [P_i P_o P_f]
      const float* po = pi ? pi + H : nullptr;
      const float* pf = pi ? pi + 2 * H : nullptr;
      const float clip = clip_;
      const bool input_forget = input_forget_;
      float* c_all = sc.c.data();
      // gates: i, o, f, c (ONNX's order). Without peepholes i, o and f take f() in one call.
      auto cell = [&](int64_t n, float* gt, float* hn) {
        float* c = c_all + n * H;
        float *gi = gt, *go = gt + H, *gf = gt + 2 * H, *gc = gt + 3 * H;
        if (pi) {
          for (int64_t j = 0; j < H; ++j) {
            gi[j] += pi[j] * c[j];
            gf[j] += pf[j] * c[j];
          }
          if (clip > 0) {
            clip_inplace(gi, H, clip);
            clip_inplace(gf, 2 * H, clip);  // f and c
          }
          f.apply(gi, H);
          if (!input_forget) f.apply(gf, H);
        } else {
          if (clip > 0) clip_inplace(gt, cols, clip);
          f.apply(gt, 3 * H);
        }
        g.apply(gc, H);
        if (input_forget) {
          for (int64_t j = 0; j < H; ++j) c[j] = (1 - gi[j]) * c[j] + gi[j] * gc[j];
        } else {
          for (int64_t j = 0; j < H; ++j) c[j] = gf[j] * c[j] + gi[j] * gc[j];
        }
        if (pi) {  // the output gate's peephole sees the new cell state
          for (int64_t j = 0; j < H; ++j) go[j] += po[j] * c[j];
          if (clip > 0) clip_inplace(go, H, clip);
          f.apply(go, H);
        }
        std::copy(c, c + H, gc);  // h = o * h(c), h(c) in the spent candidate's place
        h_act.apply(gc, H);
        for (int64_t j = 0; j < H; ++j) hn[j] = go[j] * gc[j];
      };
      RETURN_IF_ERROR(run_gated_direction(s, 4, d, reverse_only_ || d == 1, sc.xw.data(), pw.r[di][0], lens,
                                          sc.h.data(), want_y ? y.data<float>() : nullptr, sc.gates, poll, cell));
      store_state(sc.h.data(), s, d, yh);
      store_state(sc.c.data(), s, d, yc);
    }
    return Status::OK();
  }

  // One oneDNN LSTM per direction: forward on W[0], reverse on W[1] for a bidirectional node.
  void make_dnnl() {
    const Tensor &w = dnnl_weights_[0], &r = dnnl_weights_[1], &b = dnnl_weights_[2];
    for (int64_t d = 0; d < dirs_; ++d) {
      dnnl_.push_back(std::make_unique<DnnlLstm>(direction_slice(w, d), direction_slice(r, d),
                                                 b.defined() ? direction_slice(b, d) : Tensor(), reverse_only_ || d == 1));
    }
  }

  // Each direction on its own LSTM, written into its slots of y [seq, 2, batch, H] and of
  // y_h, y_c [2, batch, H].
  void run_dnnl_bidirectional(const Tensor& x, const Tensor* h0, const Tensor* c0, Tensor& y, Tensor& yh, Tensor& yc) {
    const int64_t seq = x.dim(0), batch = x.dim(1), H = yh.dim(2);
    for (int64_t d = 0; d < 2; ++d) {
      Tensor yd(DType::kFloat32, Dims{seq, 1, batch, H});
      Tensor yhd(DType::kFloat32, Dims{1, batch, H}), ycd(DType::kFloat32, Dims{1, batch, H});
      Tensor h0d = h0 ? direction_slice(*h0, d) : Tensor(), c0d = c0 ? direction_slice(*c0, d) : Tensor();
      dnnl_[static_cast<size_t>(d)]->run(x, h0 ? &h0d : nullptr, c0 ? &c0d : nullptr, yd, yhd, ycd);
      write_direction_sequence(yd, d, y);
      write_direction_state(yhd, d, yh);
      write_direction_state(ycd, d, yc);
    }
  }

  // The loop's buffers, per run (malloc serves the same sizes again from its heap; kept per
  // thread they would hold the largest run's input projection for good).
  struct Scratch {
    ProjectionBuffer xw;
    std::vector<float> gates, h, c, bias;
  };

  Node node_;
  int64_t opset_;
  std::vector<Tensor> dnnl_weights_;  // W, R, B sharing the initializers' buffers
  std::once_flag dnnl_once_;
  std::vector<std::unique_ptr<DnnlLstm>> dnnl_;  // made once, then only read
  PackedRecurrentWeights packed_;
  std::vector<RecurrentActivation> acts_;
  int64_t dirs_;
  bool reverse_only_;
  float clip_;
  bool input_forget_;
};

std::unique_ptr<NativeOp> make_lstm_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "LSTM") return nullptr;
  const std::string direction = node.attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") return nullptr;
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  std::vector<RecurrentActivation> acts;
  if (!parse_recurrent_activations(node, kDefaultActivations, dirs, &acts)) return nullptr;  // the reference names it
  auto named = [&](size_t i) { return i < node.inputs.size() && !node.inputs[i].empty(); };
  auto constant = [&](size_t i) { return constant_f32_input(node, graph, i); };
  const Tensor* w = constant(1);
  const Tensor* r = constant(2);
  const Tensor* b = constant(3);
  const bool consistent = w && r && w->rank() == 3 && r->rank() == 3 && w->dim(0) == dirs && r->dim(0) == dirs &&
                          r->dim(2) > 0 && w->dim(2) > 0 && w->dim(1) == 4 * r->dim(2) && r->dim(1) == w->dim(1) &&
                          usable_hidden_size(node, 4, r->dim(2));
  // oneDNN's primitive computes only the plain LSTM: constant weights, time-major, default
  // activations, no clip, input_forget, peepholes or sequence_lens.
  const bool dnnl_can = consistent && !(named(3) && !b) && (!b || b->dims() == Dims{dirs, 8 * r->dim(2)}) &&
                        !named(4) && !named(7) && node.attr_int("layout", 0) == 0 &&
                        node.attr_float("clip", 0.0f) == 0.0f && node.attr_int("input_forget", 0) == 0 &&
                        default_recurrent_activations(node, kDefaultActivations);
  std::vector<Tensor> dnnl_weights(3);
  if (dnnl_can) dnnl_weights = {*w, *r, b ? *b : Tensor()};
  PackedRecurrentWeights packed;
  if (consistent) packed = pack_recurrent_weights(*w, *r, {w->dim(1)});
  return std::make_unique<LstmOp>(node, opset, std::move(dnnl_weights), std::move(packed), std::move(acts));
}

}  // namespace

void register_lstm_ops(NativeOpTable& t) {
  t.add({"", "LSTM", 1, kNativeAnyOpset, {DType::kFloat32}, make_lstm_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
