// Elementwise ops and activations: the tensor in the flat layout (a contiguous chunk per PE),
// one DSD instruction over the chunk where the PE has one (@fmaxs for Relu, @fadds for Add,
// ...), else a loop over the chunk calling the generated f32 helpers (exp for Sigmoid/Tanh).
// No fabric traffic: a chain of these on the same PEs keeps its activations in SRAM.
#include <cmath>

#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {

double attr_f(const CslOpSpec& s, const char* k, double dflt) {
  auto it = s.floats.find(k);
  return it == s.floats.end() ? dflt : it->second;
}

}  // namespace

Status lower_eltwise(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const std::string& t = spec.op_type;
  const bool binary = t == "Add" || t == "Sub" || t == "Mul" || t == "Div";
  if (spec.inputs.empty() || (binary && spec.inputs.size() < 2)) {
    return invalid_argument("expects ", binary ? 2 : 1, " inputs, got ", spec.inputs.size());
  }
  const FlatTiling ft = flat_tiling(numel(spec.output.shape), spec.region);
  const std::string A = flat_input(op, ctx, spec.inputs[0], "a", ft, spec.output.shape);
  const std::string B = binary ? flat_input(op, ctx, spec.inputs[1], "b", ft, spec.output.shape) : "";
  const std::string Y = flat_output(op, ctx, spec.output, ft);
  op.macs_per_pe = ft.chunk;

  std::string body;
  auto loop = [&](const std::string& expr) {  // y[i] = expr(a[i]) when no DSD op does it
    ctx.prog.imports.push_back("exp");
    return "  for (@range(u16, {n})) |i| {\n    const v = {A}[i];\n    {Y}[i] = " + expr + ";\n  }\n";
  };
  if (t == "Relu") body = "  @fmaxs({P}_y_dsd, {P}_a_dsd, 0.0);\n";
  else if (t == "LeakyRelu") {  // max(a, alpha a) for alpha in [0, 1)
    body = "  @fmuls({P}_y_dsd, {P}_a_dsd, " + f32_literal(attr_f(spec, "alpha", 0.01)) +
           ");\n  @fmaxs({P}_y_dsd, {P}_y_dsd, {P}_a_dsd);\n";
  } else if (t == "Clip") {
    body = "  @fmaxs({P}_y_dsd, {P}_a_dsd, " + f32_literal(attr_f(spec, "min", -INFINITY)) + ");\n" +
           "  @fmins({P}_y_dsd, {P}_y_dsd, " + f32_literal(attr_f(spec, "max", INFINITY)) + ");\n";
  } else if (t == "HardSigmoid" || t == "HardSwish") {
    const double alpha = t == "HardSwish" ? 1.0 / 6 : attr_f(spec, "alpha", 0.2);
    const double beta = t == "HardSwish" ? 0.5 : attr_f(spec, "beta", 0.5);
    body = "  @fmuls({P}_y_dsd, {P}_a_dsd, " + f32_literal(alpha) + ");\n  @fadds({P}_y_dsd, {P}_y_dsd, " +
           f32_literal(beta) + ");\n  @fmaxs({P}_y_dsd, {P}_y_dsd, 0.0);\n  @fmins({P}_y_dsd, {P}_y_dsd, 1.0);\n";
    if (t == "HardSwish") body += "  @fmuls({P}_y_dsd, {P}_y_dsd, {P}_a_dsd);\n";
  } else if (t == "Add") body = "  @fadds({P}_y_dsd, {P}_a_dsd, {P}_b_dsd);\n";
  else if (t == "Sub") body = "  @fsubs({P}_y_dsd, {P}_a_dsd, {P}_b_dsd);\n";
  else if (t == "Mul") body = "  @fmuls({P}_y_dsd, {P}_a_dsd, {P}_b_dsd);\n";
  else if (t == "Neg") body = "  @fmuls({P}_y_dsd, {P}_a_dsd, -1.0);\n";
  else if (t == "Identity") body = "  @fmovs({P}_y_dsd, {P}_a_dsd);\n";
  else if (t == "Div") body = "  for (@range(u16, {n})) |i| {\n    {Y}[i] = {A}[i] / {B}[i];\n  }\n";
  else if (t == "Sigmoid") body = loop("sigmoid_f32(v)");
  else if (t == "Tanh") body = loop("2.0 * sigmoid_f32(2.0 * v) - 1.0");
  else if (t == "Exp") body = loop("exp_f32(v)");
  else if (t == "Silu") body = loop("v * sigmoid_f32(v)");
  else if (t == "Abs") body = loop("math_lib.abs(v)");
  else if (t == "Sqrt") body = loop("math_lib.sqrt(v)");
  else return not_implemented("elementwise op ", t, " has no CSL lowering");
  ASSIGN_OR_RETURN(std::string act, activation_code(spec.fused_activation, spec.activation_params, "{P}_y_dsd", "{Y}",
                                                    ft.chunk, ctx, "  "));
  body += act;

  std::string text = "// {P}: " + t + " '" + spec.node + "', " + std::to_string(ft.n) + " elements as {n} per PE on " +
                     std::to_string(spec.region.w) + " x " + std::to_string(spec.region.h) + " PEs.\n";
  text += "const {P}_a_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{n}} -> {A}[i] });\n";
  if (binary) text += "const {P}_b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{n}} -> {B}[i] });\n";
  text += "const {P}_y_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{n}} -> {Y}[i] });\n\n";
  text += "fn {P}() void {\n" + launch_prologue(op) + body + "  sys_mod.unblock_cmd_stream();\n}\n";
  op.functions = subst(text, {{"P", op.launch}, {"n", std::to_string(ft.chunk)}, {"A", A}, {"B", B}, {"Y", Y}});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
