// Native vanilla RNN (ONNX `RNN`): H_t = f(clip(X_t·Wᵀ + H_{t-1}·Rᵀ + Wb + Rb)) on our recurrent
// loop (recurrent_loop.h): the input projection for all steps at once, then per step one
// product on Rᵀ packed into column panels. Every RNN: constant or run-time weights, either
// layout, sequence_lens, clip, any of ONNX's activations (Tanh by default). Before stop 16 every
// RNN ran on the reference kernel.
#include <algorithm>
#include <memory>
#include <vector>

#include "devices/cpu/native_ops.h"
#include "devices/cpu/recurrent_activation.h"
#include "devices/cpu/recurrent_loop.h"

namespace pyflame_rt {
namespace cpu {

namespace {

class RnnOp : public NativeOp {
 public:
  // `packed`: constant weights packed once (empty: packed per run); `acts`: one per direction.
  RnnOp(const Node& node, int64_t opset, PackedRecurrentWeights packed, std::vector<RecurrentActivation> acts)
      : node_(node), opset_(opset), packed_(std::move(packed)), acts_(std::move(acts)),
        dirs_(node.attr_string("direction", "forward") == "bidirectional" ? 2 : 1),
        reverse_only_(node.attr_string("direction", "forward") == "reverse"),
        clip_(node.attr_float("clip", 0.0f)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    RecurrentInputs in;
    if (!read_recurrent_inputs(inputs, &in)) return run_reference(node_, opset_, inputs, outputs);  // odd inputs
    const Tensor *x = in.x, *w = in.w, *r = in.r, *b = in.b, *h0 = in.h0;
    const RecurrentShape s = recurrent_shape(*x, *r, node_.attr_int("layout", 0) != 0);
    const int64_t H = s.H, dirs = dirs_;
    std::vector<int64_t> lens;
    if (s.dirs != dirs || H <= 0 || s.seq <= 0 || s.batch <= 0 || !usable_hidden_size(node_, 1, H) ||
        w->dims() != Dims{dirs, H, s.in} || r->dims() != Dims{dirs, H, H} || (b && b->dims() != Dims{dirs, 2 * H}) ||
        (h0 && h0->dims() != s.state_dims()) || !read_sequence_lens(in.lens, s, &lens)) {
      return run_reference(node_, opset_, inputs, outputs);  // a mismatch (or an empty run)
    }
    count_recurrent_loop_run();
    const bool want_y = !node_.outputs.empty() && !node_.outputs[0].empty();
    Tensor y(DType::kFloat32, s.y_dims()), yh(DType::kFloat32, s.state_dims());
    // Positions past a row's length are zeros (ONNX); without sequence_lens every one is written.
    if (want_y && !lens.empty()) std::fill(y.data<float>(), y.data<float>() + y.numel(), 0.f);
    PackedRecurrentWeights local;
    if (!packed_.packed_from(*w, *r)) local = pack_recurrent_weights(*w, *r, {H});
    const PackedRecurrentWeights& pw = packed_.packed_from(*w, *r) ? packed_ : local;
    ScratchCharge xw_charge(projection_elements(*x, H), sizeof(float), "an RNN's input projection");
    ProjectionBuffer xw;
    std::vector<float> gates, h(static_cast<size_t>(s.batch * H)), bias(static_cast<size_t>(H));
    InterruptPoll poll = recurrent_poll();
    for (int64_t d = 0; d < dirs; ++d) {
      const size_t di = static_cast<size_t>(d);
      if (b) {
        const float* wb = b->data<float>() + d * 2 * H;
        for (int64_t j = 0; j < H; ++j) bias[static_cast<size_t>(j)] = wb[j] + wb[H + j];
      }
      RETURN_IF_ERROR(project_inputs(*x, pw.w[di], H, b ? bias.data() : nullptr, xw, poll));
      load_state(h0, s, d, h.data());
      const RecurrentActivation& f = acts_[di];
      const float clip = clip_;
      auto cell = [&](int64_t, float* g, float* hn) {
        if (clip > 0) {
          for (int64_t j = 0; j < H; ++j) g[j] = std::max(-clip, std::min(clip, g[j]));
        }
        f.apply(g, H);
        std::copy(g, g + H, hn);
      };
      RETURN_IF_ERROR(run_gated_direction(s, 1, d, reverse_only_ || d == 1, xw.data(), pw.r[di][0], lens, h.data(),
                                          want_y ? y.data<float>() : nullptr, gates, poll, cell));
      store_state(h.data(), s, d, yh);
    }
    return set_recurrent_outputs(outputs, std::move(y), std::move(yh));
  }

 private:
  Node node_;
  int64_t opset_;
  PackedRecurrentWeights packed_;
  std::vector<RecurrentActivation> acts_;
  int64_t dirs_;
  bool reverse_only_;
  float clip_;
};

std::unique_ptr<NativeOp> make_rnn_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "RNN") return nullptr;
  const std::string direction = node.attr_string("direction", "forward");
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") return nullptr;
  const int64_t dirs = direction == "bidirectional" ? 2 : 1;
  std::vector<RecurrentActivation> acts;
  if (!parse_recurrent_activations(node, {"Tanh"}, dirs, &acts)) return nullptr;  // the reference names it
  const Tensor* w = constant_f32_input(node, graph, 1);
  const Tensor* r = constant_f32_input(node, graph, 2);
  PackedRecurrentWeights packed;
  if (w && r && w->rank() == 3 && r->rank() == 3 && w->dim(0) == dirs && r->dims() == Dims{dirs, r->dim(2), r->dim(2)} &&
      r->dim(2) > 0 && w->dim(1) == r->dim(2) && usable_hidden_size(node, 1, r->dim(2))) {
    packed = pack_recurrent_weights(*w, *r, {r->dim(2)});
  }
  return std::make_unique<RnnOp>(node, opset, std::move(packed), std::move(acts));
}

}  // namespace

void register_rnn_ops(NativeOpTable& t) {
  t.add({"", "RNN", 1, kNativeAnyOpset, {DType::kFloat32}, make_rnn_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
