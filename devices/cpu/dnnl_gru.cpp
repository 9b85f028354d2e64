#include "devices/cpu/dnnl_gru.h"

#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

using dnnl::memory;
using tag = memory::format_tag;

DnnlGru::DnnlGru(Tensor w, Tensor r, Tensor b, bool linear_before_reset, bool reverse)
    : w_(std::move(w)), r_(std::move(r)), hidden_(r_.dim(2)), input_(w_.dim(2)), lbr_(linear_before_reset),
      reverse_(reverse) {
  const int64_t H = hidden_;
  // ONNX B is [Wbz Wbr Wbh Rbz Rbr Rbh]. z and r only ever see the sums; h keeps them apart
  // with linear_before_reset (Rbh sits inside r * (...)).
  bias_.assign(static_cast<size_t>((lbr_ ? 4 : 3) * H), 0.f);
  if (b.defined()) {
    const float* wb = b.data<float>();
    const float* rb = wb + 3 * H;
    for (int64_t j = 0; j < 2 * H; ++j) bias_[static_cast<size_t>(j)] = wb[j] + rb[j];
    for (int64_t j = 0; j < H; ++j) {
      if (lbr_) {
        bias_[static_cast<size_t>(2 * H + j)] = wb[2 * H + j];
        bias_[static_cast<size_t>(3 * H + j)] = rb[2 * H + j];
      } else {
        bias_[static_cast<size_t>(2 * H + j)] = wb[2 * H + j] + rb[2 * H + j];
      }
    }
  }
}

std::shared_ptr<const DnnlGru::Plan> DnnlGru::plan_for(int64_t seq, int64_t batch, bool has_h0) {
  // A dnnl::error thrown by the builder leaves the cache as it was and reaches the caller.
  return *plans_.get_or_build(std::make_tuple(seq, batch, has_h0), [&] { return build_plan(seq, batch, has_h0); });
}

std::shared_ptr<DnnlGru::Plan> DnnlGru::build_plan(int64_t seq, int64_t batch, bool has_h0) {
  const int64_t H = hidden_, I = input_, gates = lbr_ ? 4 : 3;
  auto plan = std::make_shared<Plan>();
  auto f32 = memory::data_type::f32;
  plan->src_layer = memory::desc({seq, batch, I}, f32, tag::tnc);
  plan->src_iter = has_h0 ? memory::desc({1, 1, batch, H}, f32, tag::ldnc) : memory::desc();
  plan->dst_layer = memory::desc({seq, batch, H}, f32, tag::tnc);
  plan->dst_iter = memory::desc({1, 1, batch, H}, f32, tag::ldnc);
  memory::desc wl_any({1, 1, I, 3, H}, f32, tag::any), wi_any({1, 1, H, 3, H}, f32, tag::any);
  memory::desc bias_md({1, 1, gates, H}, f32, tag::ldgo);
  auto direction = reverse_ ? dnnl::rnn_direction::unidirectional_right2left
                            : dnnl::rnn_direction::unidirectional_left2right;
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  memory::desc wl_md, wi_md;
  if (lbr_) {
    dnnl::lbr_gru_forward::desc d(dnnl::prop_kind::forward_inference, direction, plan->src_layer, plan->src_iter,
                                  wl_any, wi_any, bias_md, plan->dst_layer, plan->dst_iter);
    dnnl::lbr_gru_forward::primitive_desc pd(d, attr, engine());
    plan->prim = dnnl::lbr_gru_forward(pd);
    wl_md = pd.weights_layer_desc();
    wi_md = pd.weights_iter_desc();
    plan->scratch = pd.scratchpad_desc();
  } else {
    dnnl::gru_forward::desc d(dnnl::prop_kind::forward_inference, direction, plan->src_layer, plan->src_iter, wl_any,
                              wi_any, bias_md, plan->dst_layer, plan->dst_iter);
    dnnl::gru_forward::primitive_desc pd(d, attr, engine());
    plan->prim = dnnl::gru_forward(pd);
    wl_md = pd.weights_layer_desc();
    wi_md = pd.weights_iter_desc();
    plan->scratch = pd.scratchpad_desc();
  }
  // ONNX W [1, 3H, I] is oneDNN's ldgoi order (gate-major, input innermost); likewise R.
  memory user_wl(memory::desc({1, 1, I, 3, H}, f32, tag::ldgoi), engine(), w_.raw_data());
  memory user_wi(memory::desc({1, 1, H, 3, H}, f32, tag::ldgoi), engine(), r_.raw_data());
  plan->weights_layer = memory(wl_md, engine());
  plan->weights_iter = memory(wi_md, engine());
  dnnl::reorder(user_wl, plan->weights_layer).execute(thread_stream(), user_wl, plan->weights_layer);
  dnnl::reorder(user_wi, plan->weights_iter).execute(thread_stream(), user_wi, plan->weights_iter);
  thread_stream().wait();
  plan->bias = memory(bias_md, engine(), bias_.data());
  return plan;
}

void DnnlGru::run(const Tensor& x, const Tensor* h0, Tensor& y, Tensor& y_h) {
  std::shared_ptr<const Plan> plan = plan_for(x.dim(0), x.dim(1), h0 != nullptr);
  memory src(plan->src_layer, engine(), const_cast<void*>(x.raw_data()));
  memory dst(plan->dst_layer, engine(), y.raw_data());
  memory dst_iter(plan->dst_iter, engine(), y_h.raw_data());
  Scratchpad scratch(plan->scratch);
  std::unordered_map<int, memory> args = {
      {DNNL_ARG_SRC_LAYER, src},           {DNNL_ARG_WEIGHTS_LAYER, plan->weights_layer},
      {DNNL_ARG_WEIGHTS_ITER, plan->weights_iter}, {DNNL_ARG_BIAS, plan->bias},
      {DNNL_ARG_DST_LAYER, dst},           {DNNL_ARG_DST_ITER, dst_iter},
      {DNNL_ARG_SCRATCHPAD, scratch.memory()}};
  if (h0) args[DNNL_ARG_SRC_ITER] = memory(plan->src_iter, engine(), const_cast<void*>(h0->raw_data()));
  plan->prim.execute(thread_stream(), args);
  thread_stream().wait();
}

}  // namespace cpu
}  // namespace pyflame_rt
