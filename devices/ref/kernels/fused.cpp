// Reference kernels for the fused ops the compiler creates (domain "pyflame_rt"), defined by
// composition of the standard reference kernels so fused and unfused graphs agree exactly:
//   FusedConv(X, W, B?, Z?) {activation, activation_params, Conv attributes}
//     = activation(Conv(X, W, B) + Z)
//   FusedMatMul(A, B, bias?) {activation, activation_params} = activation(MatMul(A, B) + bias)
//   FusedConcat(X0, ..., Xn-1) {axis = 1, scale, shift, activation}
//     = activation(Concat(X0, ..., Xn-1) * scale[c] + shift[c]), c along axis 1
//   SqueezeExcite(X, W1, B1, W2, B2) {activation, gate, gate_params}
//     = X * FusedConv(FusedConv(GlobalAveragePool(X), W1, B1) {activation}, W2, B2) {gate}
// A PRelu activation's parameters are its slopes, one per output channel: along axis 1 of a
// FusedConv's output, the last axis of a FusedMatMul's.
#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

// Runs the standard kernel `op` of this node's attributes (plus `attrs`) on `inputs`.
Expected<Tensor> run_standard(const KernelContext& ctx, const char* op, std::vector<Value> inputs,
                              const std::map<std::string, Attribute>& attrs, const char* domain = "") {
  Node n;
  n.op_type = op;
  n.domain = domain;
  n.name = ctx.node().name;
  n.attributes = attrs;
  std::vector<const Value*> ptrs;
  for (const auto& v : inputs) ptrs.push_back(v.is_none() ? nullptr : &v);
  std::vector<Value> outs(1);
  KernelContext sub(n, 13, ptrs, &outs, nullptr);
  RETURN_IF_ERROR(KernelRegistry::reference().find(domain, op)(sub));
  return outs[0].tensor;
}

// Applies the node's "activation" (with "activation_params") by running its standard kernel;
// `channel_axis` is the axis of y a PRelu's slopes run along.
Expected<Tensor> apply_activation(const KernelContext& ctx, Tensor y, size_t channel_axis) {
  std::string act = ctx.node().attr_string("activation", "");
  if (!act.empty()) {
    std::vector<float> p = ctx.node().attr_floats("activation_params");
    std::map<std::string, Attribute> a;
    std::vector<Value> in = {y};
    auto param = [&](size_t i, float d) { return i < p.size() ? p[i] : d; };
    if (act == "LeakyRelu" || act == "Elu") a["alpha"] = Attribute::make_float(param(0, act == "Elu" ? 1.0f : 0.01f));
    if (act == "HardSigmoid") {
      a["alpha"] = Attribute::make_float(param(0, 0.2f));
      a["beta"] = Attribute::make_float(param(1, 0.5f));
    }
    if (act == "Clip") {
      in.push_back(Tensor::scalar<float>(param(0, -3.4e38f)));
      in.push_back(Tensor::scalar<float>(param(1, 3.4e38f)));
    }
    if (act == "PRelu") {
      Dims slope_dims(y.rank() > channel_axis ? y.rank() - channel_axis : 1, 1);
      slope_dims[0] = static_cast<int64_t>(p.size());
      in.push_back(Tensor::from_vector<float>(slope_dims, p));
    }
    if (act == "SiLU") {  // x * sigmoid(x)
      ASSIGN_OR_RETURN(Tensor s, run_standard(ctx, "Sigmoid", {y}, {}));
      ASSIGN_OR_RETURN(y, run_standard(ctx, "Mul", {y, s}, {}));
    } else {
      const char* domain = act == "Gelu" ? "com.microsoft" : "";
      if (!KernelRegistry::reference().find(domain, act.c_str())) {
        return ctx.error(StatusCode::kInvalidArgument, "unknown fused activation '", act, "'");
      }
      ASSIGN_OR_RETURN(y, run_standard(ctx, act.c_str(), in, a, domain));
    }
  }
  return y;
}

Status fused_conv(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  std::map<std::string, Attribute> conv_attrs;
  for (const auto& kv : ctx.node().attributes) {
    if (kv.first != "activation" && kv.first != "activation_params") conv_attrs[kv.first] = kv.second;
  }
  std::vector<Value> conv_in = {*ctx.input(0), *ctx.input(1)};
  conv_in.push_back(ctx.input(2) ? Value(*ctx.input(2)) : Value());
  ASSIGN_OR_RETURN(Tensor y, run_standard(ctx, "Conv", conv_in, conv_attrs));
  if (const Tensor* z = ctx.input(3)) {
    ASSIGN_OR_RETURN(y, run_standard(ctx, "Add", {y, *z}, {}));
  }
  ASSIGN_OR_RETURN(y, apply_activation(ctx, std::move(y), 1));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status fused_matmul(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  ASSIGN_OR_RETURN(Tensor y, run_standard(ctx, "MatMul", {*ctx.input(0), *ctx.input(1)}, {}));
  if (const Tensor* bias = ctx.input(2)) {
    ASSIGN_OR_RETURN(y, run_standard(ctx, "Add", {y, *bias}, {}));
  }
  size_t columns = y.rank() > 0 ? y.rank() - 1 : 0;
  ASSIGN_OR_RETURN(y, apply_activation(ctx, std::move(y), columns));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status fused_concat(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(1));
  std::vector<Value> parts;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.input(i)) return ctx.error(StatusCode::kInvalidArgument, "input ", i, " is missing");
    parts.push_back(*ctx.input(i));
  }
  ASSIGN_OR_RETURN(Tensor y, run_standard(ctx, "Concat", parts, {{"axis", Attribute::make_int(1)}}));
  const std::vector<float> scale = ctx.node().attr_floats("scale"), shift = ctx.node().attr_floats("shift");
  if (y.rank() < 2 || static_cast<int64_t>(scale.size()) != y.dim(1) || shift.size() != scale.size()) {
    return ctx.error(StatusCode::kInvalidArgument, "scale and shift: expected ", y.rank() < 2 ? 0 : y.dim(1),
                     " values each (the concatenated channels), got ", scale.size(), " and ", shift.size());
  }
  Dims per_channel(y.rank() - 1, 1);
  per_channel[0] = static_cast<int64_t>(scale.size());
  ASSIGN_OR_RETURN(y, run_standard(ctx, "Mul", {y, Tensor::from_vector<float>(per_channel, scale)}, {}));
  ASSIGN_OR_RETURN(y, run_standard(ctx, "Add", {y, Tensor::from_vector<float>(per_channel, shift)}, {}));
  ASSIGN_OR_RETURN(y, apply_activation(ctx, std::move(y), 1));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status squeeze_excite(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(5));
  for (size_t i = 0; i < 5; ++i) {
    if (!ctx.input(i)) return ctx.error(StatusCode::kInvalidArgument, "input ", i, " is missing");
  }
  ASSIGN_OR_RETURN(Tensor g, run_standard(ctx, "GlobalAveragePool", {*ctx.input(0)}, {}));
  std::map<std::string, Attribute> fc1, fc2;
  const std::string act = ctx.node().attr_string("activation", "");
  if (!act.empty()) fc1["activation"] = Attribute::make_string(act);
  fc2["activation"] = Attribute::make_string(ctx.node().attr_string("gate", "Sigmoid"));
  const std::vector<float> gate_params = ctx.node().attr_floats("gate_params");
  if (!gate_params.empty()) fc2["activation_params"] = Attribute::make_floats(gate_params);
  ASSIGN_OR_RETURN(Tensor h, run_standard(ctx, "FusedConv", {g, *ctx.input(1), *ctx.input(2)}, fc1, "pyflame_rt"));
  ASSIGN_OR_RETURN(Tensor s, run_standard(ctx, "FusedConv", {h, *ctx.input(3), *ctx.input(4)}, fc2, "pyflame_rt"));
  ASSIGN_OR_RETURN(Tensor y, run_standard(ctx, "Mul", {*ctx.input(0), s}, {}));
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_fused_kernels(KernelRegistry& r) {
  r.add("pyflame_rt", "FusedConv", fused_conv);
  r.add("pyflame_rt", "FusedMatMul", fused_matmul);
  r.add("pyflame_rt", "FusedConcat", fused_concat);
  r.add("pyflame_rt", "SqueezeExcite", squeeze_excite);
}

}  // namespace pyflame_rt
