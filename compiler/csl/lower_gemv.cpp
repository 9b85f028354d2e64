// Gemm / MatMul with a weight matrix, the public GEMV pattern: the M x N weight (y = x W^T)
// is tiled Mt x Nt per PE over kx columns x ky rows of PEs and stays in SRAM (column-major
// per PE); the R activation rows enter along the top row and flow SOUTH; every arriving x
// element runs one @fmacs over a weight column; the partial y vectors are then reduced EAST
// along each row, on two colours that alternate by column so that a PE receives on one and
// sends on the other; the result leaves from the rightmost column. R > 1 (a batch of rows, a
// sequence) streams the rows one after another through the same weights.
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

Status lower_gemv(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const CslTensor& x = spec.inputs[0];
  const CslTensor& w = spec.inputs[1];
  if (x.shape.empty() || w.shape.size() != 2) {
    return invalid_argument("expects x [..., K] and a 2-D weight, got ranks ", x.shape.size(), " and ", w.shape.size());
  }
  // MatMul's B is [K, N]; Gemm transB=1 gives [N, K]. M below is the output width.
  const bool wt = spec.op_type == "Gemm" && spec.trans_b;
  const int64_t K = x.shape.back();
  const int64_t M = wt ? w.shape[0] : w.shape[1];
  if ((wt ? w.shape[1] : w.shape[0]) != K) {
    return invalid_argument("x has ", K, " columns, the weight ", py_shape(w.shape), " expects ",
                            wt ? w.shape[1] : w.shape[0]);
  }
  const int64_t R = numel(x.shape) / K;
  const PeSet& g = spec.region;
  const int kx = g.w, ky = g.h;
  const int64_t Nt = ceil_div(K, kx), Mt = ceil_div(M, ky);
  const std::string P = op.launch;

  op.roles.push_back({P + "_top", PeSet{g.x0, g.y0, g.w, 1}});
  op.roles.push_back({P + "_left", PeSet{g.x0, g.y0, 1, g.h}});
  op.roles.push_back({P + "_right", PeSet{g.x0 + g.w - 1, g.y0, 1, g.h}});
  op.roles.push_back({P + "_even", PeSet{g.x0, g.y0, g.w, g.h, 2, 0}});
  const std::string Wa = add_array(op, ctx, "w", P + "_on", Mt * Nt, true);
  const std::string Xa = add_array(op, ctx, "x", P + "_top", R * Nt, true);
  const std::string Ya = add_array(op, ctx, "y", P + "_on", R * Mt, true);
  const bool has_bias = spec.inputs.size() > 2 && spec.inputs[2].weight;
  const std::string Ba = add_array(op, ctx, "b", P + "_left", R * Mt, has_bias);
  op.macs_per_pe = R * Mt * Nt;

  // x down the columns: the top row injects from its RAMP and keeps a copy for itself.
  ASSIGN_OR_RETURN(int cx, ctx.alloc_color(op, g, "x down the columns"));
  const Dir S = Dir::kSouth, N = Dir::kNorth, Rp = Dir::kRamp, E = Dir::kEast, W = Dir::kWest;
  auto& routes = ctx.prog.routes;
  if (ky == 1) {
    routes.push_back({g, cx, {Rp}, {Rp}});
  } else {
    routes.push_back({PeSet{g.x0, g.y0, g.w, 1}, cx, {Rp}, {Rp, S}});
    if (ky > 2) routes.push_back({PeSet{g.x0, g.y0 + 1, g.w, ky - 2}, cx, {N}, {Rp, S}});
    routes.push_back({PeSet{g.x0, g.y0 + ky - 1, g.w, 1}, cx, {N}, {Rp}});
  }
  op.uses.push_back({PeSet{g.x0, g.y0, g.w, 1}, cx, false, false});
  op.uses.push_back({g, cx, true, true});
  op.colors.push_back(cx);
  op.handlers.push_back({"recv_c" + std::to_string(cx), P + "_recv_x"});

  std::map<std::string, std::string> v = {
      {"P", P}, {"Mt", std::to_string(Mt)}, {"Nt", std::to_string(Nt)}, {"RNt", std::to_string(R * Nt)},
      {"RMt", std::to_string(R * Mt)}, {"cx", std::to_string(cx)}, {"W", Wa}, {"X", Xa}, {"Y", Ya}, {"B", Ba},
      {"node", spec.node}, {"op_type", spec.op_type}, {"M", std::to_string(M)}, {"K", std::to_string(K)},
      {"R", std::to_string(R)}, {"kx", std::to_string(kx)}, {"ky", std::to_string(ky)},
      {"prologue", launch_prologue(op)}};
  std::string text = subst(R"(// {P}: {op_type} '{node}', y[{R} x {M}] = x[{R} x {K}] W^T on {kx} x {ky} PEs: W tile {Mt} x {Nt}
// (column-major), x flows SOUTH on c{cx}, partial sums reduce EAST.
var {P}_w_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {W}[i] });
var {P}_yrow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {Y}[i] });
const {P}_y_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RMt}} -> {Y}[i] });
const {P}_b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RMt}} -> {B}[i] });
const {P}_x_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RNt}} -> {X}[i] });
var {P}_n: u16 = 0;  // x elements received in this run

fn {P}() void {
{prologue}  {P}_n = 0;
  // The left column starts from the bias, the others from zero.
  if ({P}_left) {
    @fmovs({P}_y_dsd, {P}_b_dsd);
  } else {
    @fmovs({P}_y_dsd, 0.0);
  }
  if ({P}_top) {
    const out = @get_dsd(fabout_dsd, .{ .fabric_color = c{cx}, .extent = {RNt}, .output_queue = oq_c{cx} });
    @fmovs(out, {P}_x_dsd, .{ .async = true });
  }
}

// One x element: column j = n % {Nt} of the weight tile, into output row r = n / {Nt}.
fn {P}_recv_x(xv: f32) void {
  const j: u16 = {P}_n % {Nt};
  const r: u16 = {P}_n / {Nt};
  const wcol = @increment_dsd_offset({P}_w_dsd, @as(i16, j * {Mt}), f32);
  const yrow = @increment_dsd_offset({P}_yrow_dsd, @as(i16, r * {Mt}), f32);
  @fmacs(yrow, yrow, wcol, xv);
  {P}_n += 1;
  if ({P}_n == {RNt}) {
    @activate(t_step);
  }
}
)", v);


  if (kx == 1) {
    text += subst(R"(
fn {P}_reduce() void {
  {P}_finish();
}
)", v);
  } else {
    ASSIGN_OR_RETURN(int ca, ctx.alloc_color(op, g, "partial sums EAST from even columns"));
    ASSIGN_OR_RETURN(int cb, ctx.alloc_color(op, g, "partial sums EAST from odd columns"));
    const PeSet even{g.x0, g.y0, g.w, g.h, 2, 0}, odd{g.x0, g.y0, g.w, g.h, 2, 1};
    routes.push_back({even, ca, {Rp}, {E}});
    routes.push_back({even, cb, {W}, {Rp}});
    if (!odd.empty()) {
      routes.push_back({odd, ca, {W}, {Rp}});
      routes.push_back({odd, cb, {Rp}, {E}});
      op.uses.push_back({odd, cb, false, false});
      op.uses.push_back({odd, ca, true, false});
    }
    op.uses.push_back({even, ca, false, false});
    op.uses.push_back({even, cb, true, false});
    op.colors.push_back(ca);
    op.colors.push_back(cb);
    v["ca"] = std::to_string(ca);
    v["cb"] = std::to_string(cb);
    text += subst(R"(
// The row reduction: even columns send on c{ca} and receive on c{cb}, odd ones the reverse.
const {P}_send: color = if ({P}_even) c{ca} else c{cb};
const {P}_recv: color = if ({P}_even) c{cb} else c{ca};
const {P}_send_oq: output_queue = if ({P}_even) oq_c{ca} else oq_c{cb};
const {P}_recv_iq: input_queue = if ({P}_even) iq_c{cb} else iq_c{ca};

fn {P}_reduce() void {
  const out = @get_dsd(fabout_dsd, .{ .fabric_color = {P}_send, .extent = {RMt}, .output_queue = {P}_send_oq });
  const in = @get_dsd(fabin_dsd, .{ .fabric_color = {P}_recv, .extent = {RMt}, .input_queue = {P}_recv_iq });
  if ({P}_left) {
    @fmovs(out, {P}_y_dsd, .{ .async = true, .activate = t_done });
  } else if ({P}_right) {
    @fadds({P}_y_dsd, {P}_y_dsd, in, .{ .async = true, .activate = t_done });
  } else {
    @fadds(out, {P}_y_dsd, in, .{ .async = true, .activate = t_done });
  }
}
)", v);
  }
  const std::string relu = spec.fused_activation == "Relu" ? "  if ({P}_right) {\n    @fmaxs({P}_y_dsd, {P}_y_dsd, 0.0);\n  }\n" : "";
  text += subst("\nfn {P}_finish() void {\n" + relu + "  sys_mod.unblock_cmd_stream();\n}\n", v);
  op.functions = text;
  op.handlers.push_back({"t_step", P + "_reduce"});
  op.handlers.push_back({"t_done", P + "_finish"});

  // run.py: W as the M x K matrix, padded to (ky*Mt, kx*Nt); PE (px, py) gets block
  // [py*Mt.., px*Nt..] column-major, PEs in row-major order (memcpy ROW_MAJOR).
  const std::string wsrc = w.py.empty() ? "w('" + w.name + "')" : w.py;
  const std::string wmat = wt ? wsrc : wsrc + ".T";
  const std::string xsrc = x.py.empty() ? py_tensor(x.name) : x.py;
  // A Conv lowered through im2col produces [Ho*Wo, Co]: the output tensor is its transpose.
  const std::string tr = spec.ints.count("im2col") ? ".T" : "";
  op.before.push_back({true, Xa, PeSet{g.x0, g.y0, g.w, 1}, R * Nt,
                       subst("pad(" + xsrc + ".reshape({R}, {K}), ({R}, {kx} * {Nt})).reshape({R}, {kx}, {Nt}).transpose(1, 0, 2)", v),
                       false, x.name});
  ctx.prog.weights.push_back({true, Wa, g, Mt * Nt,
                              subst("pad(" + wmat + ", ({ky} * {Mt}, {kx} * {Nt})).reshape({ky}, {Mt}, {kx}, {Nt}).transpose(0, 2, 3, 1)", v),
                              true, w.name});
  if (has_bias) {
    ctx.prog.weights.push_back({true, Ba, PeSet{g.x0, g.y0, 1, g.h}, R * Mt,
                                subst("np.tile(pad(w('" + spec.inputs[2].name + "').reshape(-1), ({ky} * {Mt},)).reshape({ky}, 1, {Mt}), (1, {R}, 1))", v),
                                true, spec.inputs[2].name});
    ctx.prog.host_weights.push_back(spec.inputs[2].name);
  }
  ctx.prog.host_weights.push_back(w.name);
  op.after.push_back({false, Ya, PeSet{g.x0 + g.w - 1, g.y0, 1, g.h}, R * Mt,
                      subst(py_tensor(spec.output.name) + " = buf.reshape({ky}, {R}, {Mt}).transpose(1, 0, 2).reshape({R}, {ky} * {Mt})[:, :{M}]" + tr + ".reshape" +
                                py_shape(spec.output.shape),
                            v),
                      false, spec.output.name});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
