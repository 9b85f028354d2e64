#include "devices/cpu/dnnl_lstm.h"

#include <algorithm>

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

using dnnl::memory;
using tag = memory::format_tag;

namespace {

// oneDNN gate g (i, f, c, o) is ONNX gate kOnnxGate[g] (ONNX: i, o, f, c).
constexpr int64_t kOnnxGate[4] = {0, 2, 3, 1};

}  // namespace

DnnlLstm::DnnlLstm(const Tensor& w, const Tensor& r, const Tensor& b, bool reverse)
    : hidden_(r.dim(2)), input_(w.dim(2)), reverse_(reverse) {
  const int64_t H = hidden_, I = input_;
  w_.resize(static_cast<size_t>(4 * H * I));
  r_.resize(static_cast<size_t>(4 * H * H));
  bias_.assign(static_cast<size_t>(4 * H), 0.f);
  for (int64_t g = 0; g < 4; ++g) {
    const int64_t from = kOnnxGate[g];
    std::copy(w.data<float>() + from * H * I, w.data<float>() + (from + 1) * H * I, w_.begin() + g * H * I);
    std::copy(r.data<float>() + from * H * H, r.data<float>() + (from + 1) * H * H, r_.begin() + g * H * H);
    if (b.defined()) {
      // ONNX B is [Wb_i Wb_o Wb_f Wb_c Rb_i Rb_o Rb_f Rb_c]: each gate only sees Wb + Rb.
      const float* wb = b.data<float>() + from * H;
      const float* rb = b.data<float>() + (4 + from) * H;
      for (int64_t j = 0; j < H; ++j) bias_[static_cast<size_t>(g * H + j)] = wb[j] + rb[j];
    }
  }
}

std::shared_ptr<const DnnlLstm::Plan> DnnlLstm::plan_for(int64_t seq, int64_t batch, bool has_h0, bool has_c0) {
  // A dnnl::error thrown by the builder leaves the cache as it was and reaches the caller.
  return *plans_.get_or_build(std::make_tuple(seq, batch, has_h0, has_c0),
                              [&] { return build_plan(seq, batch, has_h0, has_c0); });
}

std::shared_ptr<DnnlLstm::Plan> DnnlLstm::build_plan(int64_t seq, int64_t batch, bool has_h0, bool has_c0) {
  const int64_t H = hidden_, I = input_;
  auto plan = std::make_shared<Plan>();
  auto f32 = memory::data_type::f32;
  plan->src_layer = memory::desc({seq, batch, I}, f32, tag::tnc);
  plan->src_iter = has_h0 ? memory::desc({1, 1, batch, H}, f32, tag::ldnc) : memory::desc();
  plan->src_iter_c = has_c0 ? memory::desc({1, 1, batch, H}, f32, tag::ldnc) : memory::desc();
  plan->dst_layer = memory::desc({seq, batch, H}, f32, tag::tnc);
  plan->dst_iter = memory::desc({1, 1, batch, H}, f32, tag::ldnc);
  plan->dst_iter_c = memory::desc({1, 1, batch, H}, f32, tag::ldnc);
  memory::desc wl_any({1, 1, I, 4, H}, f32, tag::any), wi_any({1, 1, H, 4, H}, f32, tag::any);
  memory::desc bias_md({1, 1, 4, H}, f32, tag::ldgo);
  auto direction = reverse_ ? dnnl::rnn_direction::unidirectional_right2left
                            : dnnl::rnn_direction::unidirectional_left2right;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::lstm_forward::desc d(dnnl::prop_kind::forward_inference, direction, plan->src_layer, plan->src_iter,
                             plan->src_iter_c, wl_any, wi_any, bias_md, plan->dst_layer, plan->dst_iter,
                             plan->dst_iter_c);
  dnnl::lstm_forward::primitive_desc pd(d, attr, engine());
  plan->prim = dnnl::lstm_forward(pd);
  plan->scratch = pd.scratchpad_desc();
  // W [4H, I] in oneDNN's gate order is its ldgoi layout (gate-major, input innermost); likewise R.
  memory user_wl(memory::desc({1, 1, I, 4, H}, f32, tag::ldgoi), engine(), w_.data());
  memory user_wi(memory::desc({1, 1, H, 4, H}, f32, tag::ldgoi), engine(), r_.data());
  plan->weights_layer = memory(pd.weights_layer_desc(), engine());
  plan->weights_iter = memory(pd.weights_iter_desc(), engine());
  dnnl::reorder(user_wl, plan->weights_layer).execute(thread_stream(), user_wl, plan->weights_layer);
  dnnl::reorder(user_wi, plan->weights_iter).execute(thread_stream(), user_wi, plan->weights_iter);
  thread_stream().wait();
  plan->bias = memory(bias_md, engine(), bias_.data());
  return plan;
}

void DnnlLstm::run(const Tensor& x, const Tensor* h0, const Tensor* c0, Tensor& y, Tensor& y_h, Tensor& y_c) {
  // oneDNN takes both initial states or neither: the one not given is zeros.
  Tensor zeros;
  if ((h0 == nullptr) != (c0 == nullptr)) {
    zeros = Tensor(DType::kFloat32, Dims{1, x.dim(1), hidden_});
    std::fill(zeros.data<float>(), zeros.data<float>() + zeros.numel(), 0.f);
    (h0 ? c0 : h0) = &zeros;
  }
  std::shared_ptr<const Plan> plan = plan_for(x.dim(0), x.dim(1), h0 != nullptr, c0 != nullptr);
  memory src(plan->src_layer, engine(), const_cast<void*>(x.raw_data()));
  Scratchpad scratch(plan->scratch);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC_LAYER, src},
      {DNNL_ARG_WEIGHTS_LAYER, plan->weights_layer},
      {DNNL_ARG_WEIGHTS_ITER, plan->weights_iter},
      {DNNL_ARG_BIAS, plan->bias},
      {DNNL_ARG_DST_LAYER, memory(plan->dst_layer, engine(), y.raw_data())},
      {DNNL_ARG_DST_ITER, memory(plan->dst_iter, engine(), y_h.raw_data())},
      {DNNL_ARG_DST_ITER_C, memory(plan->dst_iter_c, engine(), y_c.raw_data())},
      {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
  if (h0) args[DNNL_ARG_SRC_ITER] = memory(plan->src_iter, engine(), const_cast<void*>(h0->raw_data()));
  if (c0) args[DNNL_ARG_SRC_ITER_C] = memory(plan->src_iter_c, engine(), const_cast<void*>(c0->raw_data()));
  plan->prim.execute(thread_stream(), args);
  thread_stream().wait();
}

}  // namespace cpu
}  // namespace pyflame_rt
