// Native LayerNormalization (last axis, constant scale/shift) on oneDNN, on plain row-major
// tensors (Softmax: softmax_op.cpp).
#include "devices/cpu/native_ops.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using dnnl::memory;

// Last-axis ops see their input as [rows, D].
bool plain_f32_rows(CpuValue* v, int64_t* rows, int64_t* d) {
  const Value& p = v->as_plain();
  if (!p.is_tensor() || p.tensor.dtype() != DType::kFloat32 || p.tensor.rank() < 1) return false;
  *d = p.tensor.dim(p.tensor.rank() - 1);
  *rows = *d ? p.tensor.numel() / *d : 0;
  return *rows > 0 && *d > 0;
}

class LayerNormOp : public NativeOp {
 public:
  LayerNormOp(const Node& node, int64_t opset, Tensor scale, Tensor shift)
      : node_(node), opset_(opset), scale_(std::move(scale)), shift_(std::move(shift)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    int64_t rows = 0, d = 0;
    if (!plain_f32_rows(inputs[0], &rows, &d) || d != scale_.numel()) return run_reference(node_, opset_, inputs, outputs);
    const Tensor& x = inputs[0]->as_plain().tensor;
    int64_t axis = node_.attr_int("axis", -1);
    if (axis != -1 && axis != static_cast<int64_t>(x.rank()) - 1) return run_reference(node_, opset_, inputs, outputs);
    ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(rows, d));
    Tensor y = plain_output_tensor(DType::kFloat32, x.dims());
    memory src(plan->data, engine(), const_cast<void*>(x.raw_data()));
    memory dst(plan->data, engine(), y.raw_data());
    Scratchpad scratch(plan->scratch);
    memory mean(plan->stat, engine()), var(plan->stat, engine());
    plan->prim.execute(thread_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCALE, plan->scale},
                                         {DNNL_ARG_SHIFT, plan->shift}, {DNNL_ARG_MEAN, mean},
                                         {DNNL_ARG_VARIANCE, var}, {DNNL_ARG_SCRATCHPAD, scratch.memory()}});
    thread_stream().wait();
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  struct Plan {
    dnnl::layer_normalization_forward prim;
    memory::desc data, stat, scratch;
    memory scale, shift;
  };

  Expected<std::shared_ptr<const Plan>> plan_for(int64_t rows, int64_t d) {
    return plans_.get_or_build(rows, [&] { return build_plan(rows, d); });
  }

  Expected<std::shared_ptr<Plan>> build_plan(int64_t rows, int64_t d) {
    auto plan = std::make_shared<Plan>();
    try {
      plan->data = memory::desc({rows, d}, memory::data_type::f32, memory::format_tag::ab);
      plan->stat = memory::desc({rows}, memory::data_type::f32, memory::format_tag::a);
      dnnl::primitive_attr attr;
      attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
      dnnl::layer_normalization_forward::desc desc(dnnl::prop_kind::forward_inference, plan->data, plan->stat,
                                                   node_.attr_float("epsilon", 1e-5f),
                                                   dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift);
      dnnl::layer_normalization_forward::primitive_desc pd(desc, attr, engine());
      plan->prim = dnnl::layer_normalization_forward(pd);
      plan->scratch = pd.scratchpad_desc();
      memory::desc vec({d}, memory::data_type::f32, memory::format_tag::a);
      plan->scale = memory(vec, engine(), const_cast<void*>(scale_.raw_data()));
      plan->shift = memory(vec, engine(), const_cast<void*>(shift_.raw_data()));
    } catch (const dnnl::error& e) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN could not build the layer normalization: ", e.what());
    }
    return plan;
  }

  Node node_;
  int64_t opset_;
  Tensor scale_, shift_;
  ShapePlanCache<Plan, int64_t> plans_;  // by rows (d is fixed by the scale)
};

}  // namespace

std::unique_ptr<NativeOp> make_norm_op(const Node& node, int64_t opset, const Graph& graph) {
  if (node.op_type != "LayerNormalization" || node.inputs.size() < 2) return nullptr;
  for (size_t i = 1; i < node.outputs.size(); ++i) if (!node.outputs[i].empty()) return nullptr;  // Mean/InvStdDev
  // Scale and shift as [D] (every other dim 1); other shapes, valid or not, are the
  // reference's (it checks them against the normalized shape).
  auto row_like = [](const Tensor& t) {
    for (size_t i = 0; i + 1 < t.rank(); ++i) if (t.dim(i) != 1) return false;
    return t.rank() >= 1;
  };
  auto s = graph.initializers.find(node.inputs[1]);
  if (s == graph.initializers.end() || s->second.dtype() != DType::kFloat32 || !row_like(s->second)) return nullptr;
  Tensor shift(DType::kFloat32, {s->second.numel()});
  if (node.inputs.size() > 2 && !node.inputs[2].empty()) {
    auto b = graph.initializers.find(node.inputs[2]);
    if (b == graph.initializers.end() || b->second.dtype() != DType::kFloat32 || b->second.numel() != s->second.numel() ||
        !row_like(b->second)) {
      return nullptr;
    }
    shift = b->second;
  }
  return std::make_unique<LayerNormOp>(node, opset, s->second.reshaped({s->second.numel()}), shift.reshaped({shift.numel()}));
}

void register_norm_ops(NativeOpTable& t) {
  t.add({"", "LayerNormalization", 1, kNativeAnyOpset, {DType::kFloat32}, make_norm_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
