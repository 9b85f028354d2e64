// Gemm / MatMul with a weight matrix, the public GEMV pattern: the M x N weight (y = x W^T)
// is tiled Mt x Nt per PE over kx columns x ky rows of PEs and stays in SRAM (column-major
// per PE); the activation rows enter along the block's top row and flow SOUTH; every arriving
// x element runs one @fmacs over a weight column; the partial y vectors are then reduced EAST
// along each row, on two colours that alternate by column so that a PE receives on one and
// sends on the other; the result leaves from the block's rightmost column. Several rows (a
// batch, the pixels of an im2col Conv) stream one after another through the same weights; the
// plan may place mx x my replicas of the block side by side, each taking its share of rows.
// A MatMul whose B is an activation (2-D) lowers the same way, B's tiles copied in per launch.
#include <algorithm>

#include "compiler/csl/csl_checker.h"
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
  const int mx = std::max(1, spec.m_grid_x), my = std::max(1, spec.m_grid_y);
  const int kx = spec.k_parts > 0 ? spec.k_parts : spec.region.w / mx;
  const int ky = spec.n_parts > 0 ? spec.n_parts : spec.region.h / my;
  if (kx < 1 || ky < 1 || kx * mx > spec.region.w || ky * my > spec.region.h) {
    return invalid_argument("split ", kx, "x", ky, " blocks x ", mx, "x", my, " replicas does not fit the region ",
                            spec.region.to_string());
  }
  const PeSet g{spec.region.x0, spec.region.y0, kx * mx, ky * my};
  op.region = g;
  const int64_t Nt = ceil_div(K, kx), Mt = ceil_div(M, ky), Rr = ceil_div(R, static_cast<int64_t>(mx) * my);
  const std::string P = op.launch;
  // Columns [lo, lo + n) and rows [ylo, ylo + yn) of every block (plain rectangles without replicas).
  auto sub = [&](int lo, int n, int ylo, int yn, int xmod = 1, int xrem = 0) {
    PeSet s = g;
    if (mx == 1) { s.x0 += lo; s.w = n; } else { s.bx = kx; s.bx_lo = lo; s.bx_n = n; }
    if (my == 1) { s.y0 += ylo; s.h = yn; } else { s.by = ky; s.by_lo = ylo; s.by_n = yn; }
    s.x_mod = xmod;
    s.x_rem = xrem;
    if (xmod > 1 && mx == 1) s.x_rem = ((xrem - lo) % xmod + xmod) % xmod;  // relative to the moved x0
    return s;
  };
  op.roles[0].second = g;
  op.roles.push_back({P + "_top", sub(0, kx, 0, 1)});
  op.roles.push_back({P + "_left", sub(0, 1, 0, ky)});
  op.roles.push_back({P + "_right", sub(kx - 1, 1, 0, ky)});
  op.roles.push_back({P + "_even", sub(0, kx, 0, ky, 2, 0)});
  // Rows stream through in chunks of CR: x (top row), y and the residual hold one chunk, so the
  // op fits the SRAM the plan gave it (or what the partition's earlier ops left free).
  const int64_t free = free_bytes(ctx, g);
  const int64_t budget = spec.sram_budget_bytes > 0 ? spec.sram_budget_bytes
                                                    : std::max<int64_t>(0, static_cast<int64_t>(
                                                                               (free - 4 * (Mt * Nt + Mt)) * ctx.chunk_share)) +
                                                          4 * (Mt * Nt + Mt);
  const bool has_res = !spec.residual.empty();
  const int64_t fixed_floats = Mt * Nt + Mt, per_row = Nt + Mt + (has_res ? Mt : 0);
  const int64_t CR = std::max<int64_t>(1, std::min<int64_t>(Rr, (budget / 4 - fixed_floats) / per_row));
  const int64_t chunks = ceil_div(Rr, CR);
  op.chunks = static_cast<int>(chunks);
  const std::string Wa = add_array(op, ctx, "w", P + "_on", Mt * Nt, true);
  const std::string Xa = add_array(op, ctx, "x", P + "_top", CR * Nt, true);
  const std::string Ya = add_array(op, ctx, "y", P + "_on", CR * Mt, true);
  const bool has_bias = spec.inputs.size() > 2 && spec.inputs[2].weight;
  // The bias seeds y on the blocks' left columns; with replicas across, every PE keeps it
  // (one contiguous copy for the host).
  const std::string Ba = add_array(op, ctx, "b", mx == 1 ? P + "_left" : P + "_on", Mt, has_bias);
  op.macs_per_pe = Rr * Mt * Nt;

  // x down the columns: the top row injects from its RAMP and keeps a copy for itself.
  ASSIGN_OR_RETURN(int cx, ctx.alloc_color(op, g, "x down the columns"));
  const Dir S = Dir::kSouth, N = Dir::kNorth, Rp = Dir::kRamp, E = Dir::kEast, W = Dir::kWest;
  auto& routes = ctx.prog.routes;
  if (ky == 1) {
    routes.push_back({g, cx, {Rp}, {Rp}});
  } else {
    routes.push_back({sub(0, kx, 0, 1), cx, {Rp}, {Rp, S}});
    if (ky > 2) routes.push_back({sub(0, kx, 1, ky - 2), cx, {N}, {Rp, S}});
    routes.push_back({sub(0, kx, ky - 1, 1), cx, {N}, {Rp}});
  }
  op.uses.push_back({sub(0, kx, 0, 1), cx, false, false});
  op.uses.push_back({g, cx, true, true});
  op.colors.push_back(cx);
  op.handlers.push_back({"recv_c" + std::to_string(cx), P + "_recv_x"});

  std::map<std::string, std::string> v = {
      {"P", P}, {"Mt", std::to_string(Mt)}, {"Nt", std::to_string(Nt)}, {"RNt", std::to_string(CR * Nt)},
      {"RMt", std::to_string(CR * Mt)}, {"CR", std::to_string(CR)}, {"chunks", std::to_string(chunks)}, {"cx", std::to_string(cx)}, {"W", Wa}, {"X", Xa}, {"Y", Ya}, {"B", Ba},
      {"node", spec.node}, {"op_type", spec.op_type}, {"M", std::to_string(M)}, {"K", std::to_string(K)},
      {"R", std::to_string(R)}, {"Rr", std::to_string(Rr)}, {"kx", std::to_string(kx)},
      {"ky", std::to_string(ky)}, {"mx", std::to_string(mx)}, {"my", std::to_string(my)},
      {"reps", std::to_string(mx * my)}, {"prologue", launch_prologue(op)}};
  std::string text = subst(R"(// {P}: {op_type} '{node}', y[{R} x {M}] = x[{R} x {K}] W^T on {mx} x {my} blocks of {kx} x {ky} PEs,
// {Rr} rows per block in {chunks} launch(es) of {CR}: W tile {Mt} x {Nt} (column-major), x flows
// SOUTH on c{cx}, partial sums reduce EAST.
var {P}_w_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {W}[i] });
var {P}_yrow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {Y}[i] });
const {P}_y_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RMt}} -> {Y}[i] });
const {P}_b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{Mt}} -> {B}[i] });
const {P}_x_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RNt}} -> {X}[i] });
var {P}_n: u16 = 0;  // x elements received in this run

fn {P}() void {
{prologue}  {P}_n = 0;
  // The left column starts every row from the bias, the others from zero.
  if ({P}_left) {
    for (@range(u16, {CR})) |r| {
      @fmovs(@increment_dsd_offset({P}_yrow_dsd, @as(i16, r * {Mt}), f32), {P}_b_dsd);
    }
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
    text += subst("\nfn {P}_reduce() void {\n  {P}_finish();\n}\n", v);
  } else {
    ASSIGN_OR_RETURN(int ca, ctx.alloc_color(op, g, "partial sums EAST from even columns"));
    ASSIGN_OR_RETURN(int cb, ctx.alloc_color(op, g, "partial sums EAST from odd columns"));
    const PeSet even = sub(0, kx, 0, ky, 2, 0), odd = sub(0, kx, 0, ky, 2, 1);
    routes.push_back({even, ca, {Rp}, {E}});
    routes.push_back({even, cb, {W}, {Rp}});
    routes.push_back({odd, ca, {W}, {Rp}});
    routes.push_back({odd, cb, {Rp}, {E}});
    op.uses.push_back({even, ca, false, false});
    op.uses.push_back({even, cb, true, false});
    op.uses.push_back({odd, cb, false, false});
    op.uses.push_back({odd, ca, true, false});
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
  // Epilogue on the blocks' right columns, where y is complete: the residual, then the activation.
  std::string epilogue;
  std::string Res;
  if (!spec.residual.empty()) {
    Res = add_array(op, ctx, "res", P + "_right", CR * Mt, true);
    epilogue += subst("    const res = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{RMt}} -> " + Res + "[i] });\n"
                      "    @fadds({P}_y_dsd, {P}_y_dsd, res);\n", v);
  }
  ASSIGN_OR_RETURN(std::string act, activation_code(spec.fused_activation, spec.activation_params, P + "_y_dsd",
                                                    Ya, Rr * Mt, ctx, "    "));
  epilogue += act;
  if (!epilogue.empty()) epilogue = subst("  if ({P}_right) {\n", v) + epilogue + "  }\n";
  text += subst("\nfn {P}_finish() void {\n", v) + epilogue + "  sys_mod.unblock_cmd_stream();\n}\n";
  op.functions = text;
  op.handlers.push_back({"t_step", P + "_reduce"});
  op.handlers.push_back({"t_done", P + "_finish"});

  // run.py. W as the M x K matrix padded to (ky*Mt, kx*Nt): PE (px, py) of a block gets block
  // [py*Mt.., px*Nt..] column-major; every replica the same; PEs in row-major order (memcpy
  // ROW_MAJOR). x: rows padded to reps*Rr, replica q = j*mx + i takes rows q*Rr...
  const std::string wsrc = !w.py.empty() ? w.py : w.weight ? "w('" + w.name + "')" : py_tensor(w.name);
  const std::string wmat = wt ? wsrc : wsrc + ".T";
  const std::string xsrc = x.py.empty() ? py_tensor(x.name) : x.py;
  // A Conv lowered through im2col produces [Ho*Wo, Co]: the output tensor is its transpose.
  const std::string tr = spec.ints.count("im2col") ? ".T" : "";
  // (my, mx, chunks, CR, kx, Nt): replica row j, replica i, chunk c, its rows, by PE column.
  op.prep.push_back(subst("x_{P} = pad(pad(" + xsrc + ".reshape({R}, {K}), ({reps} * {Rr}, {K})).reshape({reps}, {Rr}, {K}), " +
                              "({reps}, {chunks} * {CR}, {kx} * {Nt})).reshape({my}, {mx}, {chunks}, {CR}, {kx}, {Nt})",
                          v));
  if (ky == 1) {  // the top rows are all rows: one transfer
    op.before.push_back({true, Xa, g, CR * Nt, subst("x_{P}[:, :, c].transpose(0, 1, 3, 2, 4)", v), false, x.name, ""});
  } else {
    for (int j = 0; j < my; ++j) {
      v["j"] = std::to_string(j);
      op.before.push_back({true, Xa, PeSet{g.x0, g.y0 + j * ky, g.w, 1}, CR * Nt,
                           subst("x_{P}[{j}, :, c].transpose(0, 2, 1, 3)", v), false, x.name, ""});
    }
  }
  const std::string wtiles = subst("np.tile(pad(" + wmat + ", ({ky} * {Mt}, {kx} * {Nt})).reshape({ky}, {Mt}, {kx}, {Nt}).transpose(0, 2, 3, 1).reshape({ky}, {kx}, -1), ({my}, {mx}, 1))", v);
  if (w.weight) {
    ctx.prog.weights.push_back({true, Wa, g, Mt * Nt, wtiles, true, w.name});
    ctx.prog.host_weights.push_back(w.name);
  } else {  // activation x activation: B's tiles are copied in with the rows, per launch
    op.before.push_back({true, Wa, g, Mt * Nt, wtiles, false, w.name, ""});
  }
  if (has_bias) {
    const std::string b = "pad(w('" + spec.inputs[2].name + "').reshape(-1), ({ky} * {Mt},))";
    if (mx == 1) {
      ctx.prog.weights.push_back({true, Ba, PeSet{g.x0, g.y0, 1, g.h}, Mt,
                                  subst("np.tile(" + b + ".reshape({ky}, {Mt}), ({my}, 1))", v), true,
                                  spec.inputs[2].name});
    } else {
      ctx.prog.weights.push_back({true, Ba, g, Mt,
                                  subst("np.tile(" + b + ".reshape({ky}, 1, {Mt}), ({my}, {kx} * {mx}, 1))", v),
                                  true, spec.inputs[2].name});
    }
    ctx.prog.host_weights.push_back(spec.inputs[2].name);
  }
  // (my, mx, chunks, CR, ky, Mt) arrangements of the (R, M) result rows, per replica column i.
  const std::string mat = "pad({src}, ({reps} * {Rr}, {ky} * {Mt})).reshape({my}, {mx}, {Rr}, {ky} * {Mt})";
  if (!Res.empty()) {
    // Arranged like y: the (R, M) matrix (a Conv's [1, Co, Ho, Wo] transposed).
    v["src"] = py_tensor(spec.residual) + (tr.empty() ? ".reshape({R}, {M})" : ".reshape({M}, {R}).T");
    v["src"] = subst(v["src"], v);
    op.prep.push_back(subst("res_{P} = pad(" + subst(mat, v) + ", ({my}, {mx}, {chunks} * {CR}, {ky} * {Mt})).reshape({my}, {mx}, {chunks}, {CR}, {ky}, {Mt})", v));
    for (int i = 0; i < mx; ++i) {
      v["i"] = std::to_string(i);
      op.before.push_back({true, Res, PeSet{g.x0 + i * kx + kx - 1, g.y0, 1, g.h}, CR * Mt,
                           subst("res_{P}[:, {i}, c].transpose(0, 2, 1, 3)", v), false, spec.residual, ""});
    }
  }
  // y: each replica column's right column per chunk, then the rows in replica order.
  op.prep.push_back(subst("acc_{P} = np.zeros(({my}, {mx}, {chunks} * {CR}, {M}), np.float32)", v));
  for (int i = 0; i < mx; ++i) {
    v["i"] = std::to_string(i);
    op.after.push_back({false, Ya, PeSet{g.x0 + i * kx + kx - 1, g.y0, 1, g.h}, CR * Mt,
                        subst("acc_{P}[:, {i}, c * {CR}:(c + 1) * {CR}] = buf.reshape({my}, {ky}, {CR}, {Mt}).transpose(0, 2, 1, 3).reshape({my}, {CR}, {ky} * {Mt})[:, :, :{M}]", v),
                        false, spec.output.name, ""});
  }
  op.post.push_back(py_tensor(spec.output.name) + subst(" = acc_{P}[:, :, :{Rr}].reshape(-1, {M})[:{R}]", v) + tr +
                    ".reshape" + py_shape(spec.output.shape));
  return Status::OK();
}

}  // namespace pyflame_rt::csl
