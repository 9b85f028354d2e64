// Conv, output-stationary: every PE of a kx x ky grid owns a th x tw tile of the output plane
// for all output channels, the input tile under it with its halo (cut by run.py from the
// padded input), and the weights. Grouped (depthwise) convolutions first split their groups
// into blocks across the columns, each block its own kx x ky grid. Per output channel, input channel and kernel tap, one
// @fmacs per output row adds the tap's weight times a strided input row.
// When that does not fit a PE's SRAM (deep layers: the replicated weights), the Conv is
// lowered as im2col + the GEMV pattern instead (lower_gemv.cpp): run.py builds the
// [Ho*Wo, C*KH*KW] patch matrix, the [Co, C*KH*KW] weight is tiled over the PEs, the patches
// stream SOUTH as rows.
#include <algorithm>

#include "compiler/csl/conv_geometry.h"
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {

Status lower_conv_im2col(const CslOpSpec& spec, const WindowGeometry& g, int64_t group, LowerContext& ctx,
                         OpCode& op, int64_t os_bytes) {
  if (group != 1) {
    return make_status(StatusCode::kResourceExhausted, "output-stationary tiles need ", os_bytes,
                       " bytes per PE (budget ", ctx.budget.data_bytes(), ") and im2col lowers group=1 only, got group=",
                       group, ": give the op more PEs");
  }
  CslOpSpec m = spec;
  m.op_type = "Gemm";
  m.trans_b = true;
  m.ints["im2col"] = {1};
  m.inputs[0].shape = {g.Ho * g.Wo, g.C * g.KH * g.KW};
  m.inputs[0].py = subst("im2col({x}, {KH}, {KW}, {sh}, {sw}, {dh}, {dw}, {pt}, {pl}, {Ho}, {Wo})",
                         {{"x", py_tensor(spec.inputs[0].name)}, {"KH", std::to_string(g.KH)},
                          {"KW", std::to_string(g.KW)}, {"sh", std::to_string(g.sh)}, {"sw", std::to_string(g.sw)},
                          {"dh", std::to_string(g.dh)}, {"dw", std::to_string(g.dw)}, {"pt", std::to_string(g.pt)},
                          {"pl", std::to_string(g.pl)}, {"Ho", std::to_string(g.Ho)}, {"Wo", std::to_string(g.Wo)}});
  m.inputs[1].shape = {g.Co, g.C * g.KH * g.KW};
  m.inputs[1].py = "w('" + spec.inputs[1].name + "').reshape(" + std::to_string(g.Co) + ", -1)";
  op.lowering = "conv_im2col";
  return lower_gemv(m, ctx, op);
}

}  // namespace

Status lower_conv(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  if (spec.inputs.size() < 2 || !spec.inputs[1].weight || spec.inputs[1].shape.size() != 4) {
    return not_implemented("Conv lowers with a constant [Co, C/group, KH, KW] weight only");
  }
  const auto& ws = spec.inputs[1].shape;
  ASSIGN_OR_RETURN(WindowGeometry g0, WindowGeometry::make(spec, ws[2], ws[3], spec.region.w, spec.region.h));
  auto git = spec.ints.find("group");
  const int64_t group = git == spec.ints.end() || git->second.empty() ? 1 : git->second[0];
  const int64_t Cg = g0.C / group, CoG = g0.Co / group;
  if (Cg != ws[1] || g0.Co != ws[0]) {
    return invalid_argument("weight ", py_shape(ws), " does not match input channels ", g0.C, " / group ", group,
                            " and output channels ", g0.Co);
  }
  const bool has_bias = spec.inputs.size() > 2 && spec.inputs[2].weight;
  const bool has_res = !spec.residual.empty();
  const int64_t budget = free_bytes(ctx, spec.region);
  // Grouped (depthwise) convolutions split their groups into cbx x cby blocks of PEs, each
  // block a kx x ky spatial grid: fewer channels per PE, smaller weights. Plain ones: 1 x 1.
  int64_t cbx = 0, cby = 0, gb = 0;
  WindowGeometry geo;
  int64_t floats = 0;
  bool fits = false;
  const int max_bx = group > 1 ? spec.region.w : 1, max_by = group > 1 ? spec.region.h : 1;
  for (int by = 1; by <= max_by && !fits; ++by) {
    for (int bx = 1; bx <= max_bx && !fits; ++bx) {
      if (static_cast<int64_t>(bx) * by > group) break;
      ASSIGN_OR_RETURN(WindowGeometry t, WindowGeometry::make(spec, ws[2], ws[3], spec.region.w / bx, spec.region.h / by));
      const int64_t blk = ceil_div(group, static_cast<int64_t>(bx) * by);
      const int64_t f = blk * Cg * t.ih * t.iw + blk * CoG * Cg * t.KH * t.KW + blk * CoG +
                        blk * CoG * t.th * t.tw * (has_res ? 2 : 1);
      if (cbx == 0 || f < floats) {
        cbx = bx;
        cby = by;
        gb = blk;
        geo = t;
        floats = f;
      }
      fits = f * 4 <= budget;  // the fewest blocks that fit (rows of blocks last)
    }
  }
  const int64_t cb = cbx * cby;
  if (floats * 4 > budget || spec.ints.count("im2col")) {
    return lower_conv_im2col(spec, geo, group, ctx, op, floats * 4);
  }
  const WindowGeometry& g = geo;
  const int64_t Cb = gb * Cg, Cob = gb * CoG;  // channels per block
  const PeSet used{spec.region.x0, spec.region.y0, static_cast<int>(cbx) * g.kx, static_cast<int>(cby) * g.ky};
  op.region = used;
  op.roles[0].second = used;
  const std::string P = op.launch;
  const std::string X = add_array(op, ctx, "x", P + "_on", Cb * g.ih * g.iw, true);
  const std::string Wa = add_array(op, ctx, "w", P + "_on", Cob * Cg * g.KH * g.KW, true);
  const std::string B = add_array(op, ctx, "b", P + "_on", Cob, true);
  const std::string Y = add_array(op, ctx, "y", P + "_on", Cob * g.th * g.tw, true);
  op.macs_per_pe = Cob * Cg * g.KH * g.KW * g.th * g.tw;

  std::map<std::string, std::string> v = {
      {"P", P}, {"X", X}, {"W", Wa}, {"B", B}, {"Y", Y}, {"Co", std::to_string(Cob)}, {"Cg", std::to_string(Cg)},
      {"CoG", std::to_string(CoG)}, {"KH", std::to_string(g.KH)}, {"KW", std::to_string(g.KW)},
      {"th", std::to_string(g.th)}, {"tw", std::to_string(g.tw)}, {"ih", std::to_string(g.ih)},
      {"iw", std::to_string(g.iw)}, {"sh", std::to_string(g.sh)}, {"sw", std::to_string(g.sw)},
      {"dh", std::to_string(g.dh)}, {"dw", std::to_string(g.dw)}, {"plane", std::to_string(g.th * g.tw)},
      {"node", spec.node}, {"kx", std::to_string(g.kx)}, {"ky", std::to_string(g.ky)},
      {"prologue", launch_prologue(op)}, {"C", std::to_string(Cb)}, {"cb", std::to_string(cbx) + " x " + std::to_string(cby)},
      {"Call", std::to_string(g.C)}, {"Coall", std::to_string(g.Co)}, {"group", std::to_string(group)}};
  std::string text = subst(R"(// {P}: Conv '{node}', {Call} -> {Coall} channels in {group} group(s), kernel {KH}x{KW}, stride {sh}x{sw},
// on {cb} channel block(s) of {kx} x {ky} PEs: output tile {Co} x {th} x {tw} per PE, input tile
// {C} x {ih} x {iw} with its halo.
const {P}_orow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{tw}} -> {Y}[i] });
const {P}_irow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{tw}} -> {X}[i * {sw}] });
const {P}_oplane_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{plane}} -> {Y}[i] });

fn {P}() void {
{prologue}  for (@range(u16, {Co})) |co| {
    const g: u16 = co / {CoG};
    const oplane = @increment_dsd_offset({P}_oplane_dsd, @as(i16, co * {plane}), f32);
    @fmovs(oplane, {B}[co]);
    for (@range(u16, {Cg})) |ci| {
      const c: u16 = g * {Cg} + ci;
      for (@range(u16, {KH})) |kh| {
        for (@range(u16, {KW})) |kw| {
          const wv = {W}[((co * {Cg} + ci) * {KH} + kh) * {KW} + kw];
          for (@range(u16, {th})) |r| {
            const orow = @increment_dsd_offset({P}_orow_dsd, @as(i16, (co * {th} + r) * {tw}), f32);
            const irow = @increment_dsd_offset({P}_irow_dsd, @as(i16, (c * {ih} + r * {sh} + kh * {dh}) * {iw} + kw * {dw}), f32);
            @fmacs(orow, orow, irow, wv);
          }
        }
      }
    }
  }
)", v);
  const int64_t out_n = Cob * g.th * g.tw;
  std::string Res;
  if (has_res || !spec.fused_activation.empty()) {
    text += subst("  const all = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{" + std::to_string(out_n) + "} -> {Y}[i] });\n", v);
  }
  if (has_res) {
    Res = add_array(op, ctx, "res", P + "_on", out_n, true);
    text += "  const res = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{" + std::to_string(out_n) + "} -> " + Res +
            "[i] });\n  @fadds(all, all, res);\n";
  }
  ASSIGN_OR_RETURN(std::string act, activation_code(spec.fused_activation, spec.activation_params, "all", Y, out_n, ctx, "  "));
  text += act;
  text += "  sys_mod.unblock_cmd_stream();\n}\n";
  op.functions = text;

  // run.py: channels padded to whole blocks; block b = by * cbx + bx; PEs row-major over
  // (cby, ky) rows and (cbx, kx) columns.
  const std::string cbs = std::to_string(cb), kxs = std::to_string(g.kx), kys = std::to_string(g.ky);
  const std::string cbxs = std::to_string(cbx), cbys = std::to_string(cby);
  const std::string Cp = std::to_string(cb * Cb), Cop = std::to_string(cb * Cob);
  auto by_block = [&](const std::string& tiles, const std::string& per_ch) {  // (ky, kx, Cp, a, b, c) -> rows, cols
    return tiles + ".reshape(" + kys + ", " + kxs + ", " + cbys + ", " + cbxs + ", " + per_ch +
           ").transpose(2, 0, 3, 1, 4, 5, 6)";
  };
  const std::string xin = "pad(" + py_tensor(spec.inputs[0].name) + ", (1, " + Cp + ", " + std::to_string(g.H) + ", " +
                          std::to_string(g.W) + "))";
  op.before.push_back({true, X, used, Cb * g.ih * g.iw,
                       by_block(g.py_tiles(xin, "0.0"), std::to_string(Cb) + ", " + std::to_string(g.ih) + ", " + std::to_string(g.iw)),
                       false, spec.inputs[0].name, ""});
  auto per_block = [&](const std::string& arr, int64_t per_pe) {  // (cb, per_pe) over (cby, ky, cbx, kx)
    const std::string n = std::to_string(per_pe);
    return "np.broadcast_to(" + arr + ".reshape(" + cbys + ", 1, " + cbxs + ", 1, " + n + "), (" + cbys + ", " + kys +
           ", " + cbxs + ", " + kxs + ", " + n + "))";
  };
  const int64_t wlen = Cob * Cg * g.KH * g.KW;
  ctx.prog.weights.push_back({true, Wa, used, wlen,
                              per_block("pad(w('" + spec.inputs[1].name + "'), (" + Cop + ", " + std::to_string(Cg) + ", " +
                                            std::to_string(g.KH) + ", " + std::to_string(g.KW) + "))",
                                        wlen),
                              true, spec.inputs[1].name, ""});
  ctx.prog.host_weights.push_back(spec.inputs[1].name);
  const std::string bias = has_bias ? "pad(w('" + spec.inputs[2].name + "'), (" + Cop + ",))" : "np.zeros((" + Cop + ",))";
  ctx.prog.weights.push_back({true, B, used, Cob, per_block(bias, Cob), true, has_bias ? spec.inputs[2].name : "", ""});
  if (has_bias) ctx.prog.host_weights.push_back(spec.inputs[2].name);
  const std::string ochan = std::to_string(Cob) + ", " + std::to_string(g.th) + ", " + std::to_string(g.tw);
  if (has_res) {
    const std::string rin = "pad(" + py_tensor(spec.residual) + ", (1, " + Cop + ", " + std::to_string(g.Ho) + ", " +
                            std::to_string(g.Wo) + "))";
    op.before.push_back({true, Res, used, out_n,
                         by_block("out_tiles(" + rin + ", " + std::to_string(g.th) + ", " + std::to_string(g.tw) + ", " +
                                      kxs + ", " + kys + ")",
                                  ochan),
                         false, spec.residual, ""});
  }
  op.after.push_back({false, Y, used, out_n,
                      py_tensor(spec.output.name) + " = buf.reshape(" + cbys + ", " + kys + ", " + cbxs + ", " + kxs + ", " +
                          ochan + ").transpose(0, 2, 4, 1, 5, 3, 6).reshape(1, " + Cop + ", " + kys + " * " + std::to_string(g.th) +
                          ", " + kxs + " * " + std::to_string(g.tw) + ")[:, :" + std::to_string(g.Co) + ", :" +
                          std::to_string(g.Ho) + ", :" + std::to_string(g.Wo) + "]",
                      false, spec.output.name, ""});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
