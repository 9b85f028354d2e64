// Native LSTM on oneDNN's LSTM primitive (dnnl_lstm.h), one per direction, for what exported
// models use: constant W, R and B, time-major, default activations (Sigmoid, Tanh, Tanh), no
// clip, no input_forget, no peepholes (P) and no sequence_lens. Every other LSTM runs on the
// reference kernel, named by get_fallback_nodes(): before this kernel every LSTM did, 37-46 ms
// against ONNX Runtime's 0.22-0.34 ms for 50 steps of H 128 (docs/performance.md, stop 15).
#include <memory>
#include <vector>

#include "devices/cpu/dnnl_lstm.h"
#include "devices/cpu/native_ops.h"
#include "devices/cpu/omp_threads_while.h"
#include "devices/cpu/recurrent_directions.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class LstmOp : public NativeOp {
 public:
  // `dnnl`: one LSTM per direction (forward, then reverse for a bidirectional node).
  LstmOp(const Node& node, int64_t opset, std::vector<std::unique_ptr<DnnlLstm>> dnnl, int64_t hidden, int64_t input)
      : node_(node), opset_(opset), dnnl_(std::move(dnnl)), hidden_(hidden), input_(input) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    auto at = [&](size_t i) { return i < inputs.size() ? inputs[i] : nullptr; };
    const Tensor* x = plain_f32(at(0));
    const Tensor* h0 = plain_f32(at(5));
    const Tensor* c0 = plain_f32(at(6));
    const int64_t dirs = static_cast<int64_t>(dnnl_.size()), H = hidden_;
    if (!x || x->rank() != 3 || at(4) || at(7) || (at(5) && !h0) || (at(6) && !c0)) {
      return run_reference(node_, opset_, inputs, outputs);  // sequence_lens, P or odd inputs
    }
    const int64_t seq = x->dim(0), batch = x->dim(1);
    if (x->dim(2) != input_ || seq <= 0 || batch <= 0 || (h0 && h0->dims() != Dims{dirs, batch, H}) ||
        (c0 && c0->dims() != Dims{dirs, batch, H})) {
      return run_reference(node_, opset_, inputs, outputs);  // the reference names the mismatch
    }
    Tensor y(DType::kFloat32, Dims{seq, dirs, batch, H});
    Tensor yh(DType::kFloat32, Dims{dirs, batch, H}), yc(DType::kFloat32, Dims{dirs, batch, H});
    try {
      OmpThreadsWhile team(recurrent_step_team(batch, 4, H));
      if (dirs == 1) {
        dnnl_[0]->run(*x, h0, c0, y, yh, yc);
      } else {
        run_bidirectional(*x, h0, c0, y, yh, yc);
      }
    } catch (const dnnl::error&) {
      return run_reference(node_, opset_, inputs, outputs);  // a shape oneDNN refuses
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    if (outputs.size() > 1) outputs[1] = CpuValue::from_plain(Value(std::move(yh)));
    if (outputs.size() > 2) outputs[2] = CpuValue::from_plain(Value(std::move(yc)));
    return Status::OK();
  }

 private:
  // Each direction on its own LSTM, written into its slots of y [seq, 2, batch, H] and of
  // y_h, y_c [2, batch, H].
  void run_bidirectional(const Tensor& x, const Tensor* h0, const Tensor* c0, Tensor& y, Tensor& yh, Tensor& yc) {
    const int64_t seq = x.dim(0);
    for (int64_t d = 0; d < 2; ++d) {
      Tensor yd(DType::kFloat32, Dims{seq, 1, x.dim(1), hidden_});
      Tensor yhd(DType::kFloat32, Dims{1, x.dim(1), hidden_}), ycd(DType::kFloat32, Dims{1, x.dim(1), hidden_});
      Tensor h0d = h0 ? direction_slice(*h0, d) : Tensor(), c0d = c0 ? direction_slice(*c0, d) : Tensor();
      dnnl_[static_cast<size_t>(d)]->run(x, h0 ? &h0d : nullptr, c0 ? &c0d : nullptr, yd, yhd, ycd);
      write_direction_sequence(yd, d, y);
      write_direction_state(yhd, d, yh);
      write_direction_state(ycd, d, yc);
    }
  }

  Node node_;
  int64_t opset_;
  std::vector<std::unique_ptr<DnnlLstm>> dnnl_;
  int64_t hidden_, input_;
};

std::unique_ptr<NativeOp> make_lstm_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "LSTM" || node.attr_float("clip", 0.0f) != 0.0f || node.attr_int("input_forget", 0) != 0 ||
      node.attr_int("layout", 0) != 0) {
    return nullptr;
  }
  const std::string direction = node.attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") return nullptr;
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  std::vector<std::string> acts = node.attr_strings("activations");
  if (!acts.empty() && acts.size() != static_cast<size_t>(3 * dirs)) return nullptr;
  for (size_t i = 0; i < acts.size(); ++i) {
    if (acts[i] != (i % 3 == 0 ? "Sigmoid" : "Tanh")) return nullptr;
  }
  auto named = [&](size_t i) { return i < node.inputs.size() && !node.inputs[i].empty(); };
  auto constant = [&](size_t i) { return constant_f32_input(node, graph, i); };
  const Tensor* w = constant(1);
  const Tensor* r = constant(2);
  const Tensor* b = constant(3);
  if (!w || !r || (named(3) && !b) || named(4) || named(7) || w->rank() != 3 || r->rank() != 3) return nullptr;
  const int64_t H = r->dim(2), in = w->dim(2);
  // hidden_size, when set, must be R's H (the reference names a mismatch).
  if (H <= 0 || in <= 0 || node.attr_int("hidden_size", H) != H || w->dims() != Dims{dirs, 4 * H, in} || r->dims() != Dims{dirs, 4 * H, H} ||
      (b && b->dims() != Dims{dirs, 8 * H})) {
    return nullptr;
  }
  std::vector<std::unique_ptr<DnnlLstm>> lstms;
  for (int64_t d = 0; d < dirs; ++d) {
    lstms.push_back(std::make_unique<DnnlLstm>(direction_slice(*w, d), direction_slice(*r, d),
                                               b ? direction_slice(*b, d) : Tensor(), direction == "reverse" || d == 1));
  }
  return std::make_unique<LstmOp>(node, opset, std::move(lstms), H, in);
}

}  // namespace

void register_lstm_ops(NativeOpTable& t) {
  t.add({"", "LSTM", 1, kNativeAnyOpset, {DType::kFloat32}, make_lstm_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
