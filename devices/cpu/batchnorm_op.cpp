// Native standalone BatchNormalization (inference: constant scale, bias, mean and variance)
// on oneDNN's batch normalization with global statistics, in the layout of its input: after a
// convolution and an activation (which the conv fusion cannot fold through) the value stays
// blocked. Any rank oneDNN takes ([N,C], [N,C,L], [N,C,H,W], [N,C,D,H,W]).
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
    std::shared_ptr<Plan> plan = plan_for(md);
    if (!plan) return run_reference(node_, opset_, inputs, outputs);
    memory src = x->as_native(md);
    CpuValue out = CpuValue::allocate_native(md, dims);
    memory scratch = scratchpad_for(plan->scratch);
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, out.native}, {DNNL_ARG_SCALE, plan->vec[0]},
                                         {DNNL_ARG_SHIFT, plan->vec[1]}, {DNNL_ARG_MEAN, plan->vec[2]},
                                         {DNNL_ARG_VARIANCE, plan->vec[3]}, {DNNL_ARG_SCRATCHPAD, scratch}});
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

  // nullptr when oneDNN cannot build it for this layout (remembered: no retry per run).
  std::shared_ptr<Plan> plan_for(const memory::desc& md) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : plans_) if (p.first == md) return p.second;
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
    plans_.emplace_back(md, plan);
    return plan;
  }

  Node node_;
  int64_t opset_;
  std::vector<Tensor> params_;  // scale, B, mean, var: f32 [C]
  std::mutex mu_;
  std::vector<std::pair<memory::desc, std::shared_ptr<Plan>>> plans_;
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

}  // namespace cpu
}  // namespace pyflame_rt
