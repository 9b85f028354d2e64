// Gemm / MatMul with many rows on a square P x P rectangle: SUMMA. PE (px, py) keeps the A
// tile [py, px] (activations), the B tile [py, px] (weights) and the C tile [py, px], all
// column-major. In step s column s broadcasts its A tiles along the rows and row s its B tiles
// down the columns (the SDK's <collectives_2d> library, which routes its own colours); when
// both have arrived, local @fmacs accumulate C += A_s B_s. After P steps C holds the result.
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

Status lower_summa(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const CslTensor& a = spec.inputs[0];
  const CslTensor& w = spec.inputs[1];
  const bool wt = spec.op_type == "Gemm" && spec.trans_b;
  const int64_t K = a.shape.back(), M = numel(a.shape) / K;
  const int64_t N = wt ? w.shape[0] : w.shape[1];
  const int P = spec.region.w;
  const int64_t Mt = ceil_div(M, P), Kt = ceil_div(K, P), Nt = ceil_div(N, P);
  RETURN_IF_ERROR(ensure_collectives(ctx, op));
  const std::string p = op.launch;
  const std::string A = add_array(op, ctx, "a", p + "_on", Mt * Kt, true);
  const std::string Ab = add_array(op, ctx, "abuf", p + "_on", Mt * Kt, false);
  const std::string B = add_array(op, ctx, "w", p + "_on", Kt * Nt, true);
  const std::string Bb = add_array(op, ctx, "wbuf", p + "_on", Kt * Nt, false);
  const std::string C = add_array(op, ctx, "y", p + "_on", Mt * Nt, true);
  const bool has_bias = spec.inputs.size() > 2 && spec.inputs[2].weight;
  const std::string Bias = add_array(op, ctx, "b", p + "_on", Nt, true);
  op.macs_per_pe = static_cast<int64_t>(P) * Mt * Kt * Nt;
  op.handlers.push_back({"t_summa", p + "_multiply"});
  std::map<std::string, std::string> v = {
      {"P", p}, {"A", A}, {"Ab", Ab}, {"B", B}, {"Bb", Bb}, {"C", C}, {"Bias", Bias}, {"Mt", std::to_string(Mt)},
      {"Kt", std::to_string(Kt)}, {"Nt", std::to_string(Nt)}, {"MtKt", std::to_string(Mt * Kt)},
      {"KtNt", std::to_string(Kt * Nt)}, {"MtNt", std::to_string(Mt * Nt)}, {"steps", std::to_string(P)},
      {"node", spec.node}, {"op", spec.op_type}, {"M", std::to_string(M)}, {"K", std::to_string(K)},
      {"N", std::to_string(N)}, {"prologue", launch_prologue(op)},
      {"relu", spec.fused_activation == "Relu"
                   ? "    const all = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{MtNt}} -> {C}[i] });\n    @fmaxs(all, all, 0.0);\n"
                   : ""}};
  op.functions = subst(R"(// {P}: {op} '{node}', C[{M} x {N}] = A[{M} x {K}] B by SUMMA on {steps} x {steps} PEs:
// tiles A {Mt} x {Kt}, B {Kt} x {Nt}, C {Mt} x {Nt} per PE (column-major).
var {P}_step: u16 = 0;

fn {P}() void {
{prologue}  summa_init();
  {P}_step = 0;
  for (@range(u16, {Nt})) |j| {
    const ccol = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {C}[j * {Mt} + i] });
    @fmovs(ccol, {Bias}[j]);
  }
  {P}_broadcast();
}

fn {P}_broadcast() void {
  const ap = if (summa_px == {P}_step) &{A} else &{Ab};
  const bp = if (summa_py == {P}_step) &{B} else &{Bb};
  mpi_x.broadcast({P}_step, @ptrcast([*]u32, ap), {MtKt}, t_xdone);
  mpi_y.broadcast({P}_step, @ptrcast([*]u32, bp), {KtNt}, t_ydone);
}

// Both tiles of this step have arrived: C += A_s B_s, one @fmacs per (k, j).
fn {P}_multiply() void {
  const ap = if (summa_px == {P}_step) &{A} else &{Ab};
  const bp = if (summa_py == {P}_step) &{B} else &{Bb};
  var acol = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {A}[i] });
  acol = @set_dsd_base_addr(acol, ap);
  for (@range(u16, {Kt})) |k| {
    var ccol = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {C}[i] });
    for (@range(u16, {Nt})) |j| {
      @fmacs(ccol, ccol, acol, bp.*[j * {Kt} + k]);
      ccol = @increment_dsd_offset(ccol, {Mt}, f32);
    }
    acol = @increment_dsd_offset(acol, {Mt}, f32);
  }
  {P}_step += 1;
  @block(t_summa);
  if ({P}_step < {steps}) {
    {P}_broadcast();
  } else {
{relu}    sys_mod.unblock_cmd_stream();
  }
}
)", v);
  op.functions = subst(op.functions, v);  // {relu} brings its own placeholders
  const PeSet& g = spec.region;
  const std::string asrc = a.py.empty() ? py_tensor(a.name) : a.py;
  const std::string wsrc = w.py.empty() ? "w('" + w.name + "')" : w.py;
  op.before.push_back({true, A, g, Mt * Kt,
                       subst("pad(" + asrc + ".reshape({M}, {K}), ({steps} * {Mt}, {steps} * {Kt})).reshape({steps}, {Mt}, {steps}, {Kt}).transpose(0, 2, 3, 1)", v),
                       false, a.name});
  ctx.prog.weights.push_back({true, B, g, Kt * Nt,
                              subst("pad(" + wsrc + (wt ? ".T" : "") + ", ({steps} * {Kt}, {steps} * {Nt})).reshape({steps}, {Kt}, {steps}, {Nt}).transpose(0, 2, 3, 1)", v),
                              true, w.name});
  ctx.prog.host_weights.push_back(w.name);
  const std::string bias = has_bias ? "pad(w('" + spec.inputs[2].name + "').reshape(-1), ({steps} * {Nt},))"
                                    : "np.zeros(({steps} * {Nt},))";
  ctx.prog.weights.push_back({true, Bias, g, Nt, subst("np.tile(" + bias + ".reshape(1, {steps}, {Nt}), ({steps}, 1, 1))", v),
                              true, has_bias ? spec.inputs[2].name : ""});
  if (has_bias) ctx.prog.host_weights.push_back(spec.inputs[2].name);
  op.after.push_back({false, C, g, Mt * Nt,
                      subst(py_tensor(spec.output.name) + " = buf.reshape({steps}, {steps}, {Nt}, {Mt}).transpose(0, 3, 1, 2).reshape({steps} * {Mt}, {steps} * {Nt})[:{M}, :{N}].reshape" + py_shape(spec.output.shape), v),
                      false, spec.output.name});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
