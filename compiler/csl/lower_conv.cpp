// Conv, output-stationary: every PE of a kx x ky grid owns a th x tw tile of the output plane
// for all output channels, the input tile under it with its halo (cut by run.py from the
// padded input), and the weights. Per output channel, input channel and kernel tap, one
// @fmacs per output row adds the tap's weight times a strided input row.
// When that does not fit a PE's SRAM (deep layers: the replicated weights), the Conv is
// lowered as im2col + the GEMV pattern instead (lower_gemv.cpp): run.py builds the
// [Ho*Wo, C*KH*KW] patch matrix, the [Co, C*KH*KW] weight is tiled over the PEs, the patches
// stream SOUTH as rows.
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
  ASSIGN_OR_RETURN(WindowGeometry g, WindowGeometry::make(spec, ws[2], ws[3], spec.region.w, spec.region.h));
  auto git = spec.ints.find("group");
  const int64_t group = git == spec.ints.end() || git->second.empty() ? 1 : git->second[0];
  const int64_t Cg = g.C / group, CoG = g.Co / group;
  if (Cg != ws[1] || g.Co != ws[0]) {
    return invalid_argument("weight ", py_shape(ws), " does not match input channels ", g.C, " / group ", group,
                            " and output channels ", g.Co);
  }
  const bool has_bias = spec.inputs.size() > 2 && spec.inputs[2].weight;
  const int64_t os_floats = g.C * g.ih * g.iw + g.Co * Cg * g.KH * g.KW + g.Co + g.Co * g.th * g.tw;
  if (os_floats * 4 > ctx.budget.data_bytes() || spec.ints.count("im2col")) {
    return lower_conv_im2col(spec, g, group, ctx, op, os_floats * 4);
  }
  const std::string P = op.launch;
  const std::string X = add_array(op, ctx, "x", P + "_on", g.C * g.ih * g.iw, true);
  const std::string Wa = add_array(op, ctx, "w", P + "_on", g.Co * Cg * g.KH * g.KW, true);
  const std::string B = add_array(op, ctx, "b", P + "_on", g.Co, true);
  const std::string Y = add_array(op, ctx, "y", P + "_on", g.Co * g.th * g.tw, true);
  op.macs_per_pe = g.Co * Cg * g.KH * g.KW * g.th * g.tw;

  std::map<std::string, std::string> v = {
      {"P", P}, {"X", X}, {"W", Wa}, {"B", B}, {"Y", Y}, {"Co", std::to_string(g.Co)}, {"Cg", std::to_string(Cg)},
      {"CoG", std::to_string(CoG)}, {"KH", std::to_string(g.KH)}, {"KW", std::to_string(g.KW)},
      {"th", std::to_string(g.th)}, {"tw", std::to_string(g.tw)}, {"ih", std::to_string(g.ih)},
      {"iw", std::to_string(g.iw)}, {"sh", std::to_string(g.sh)}, {"sw", std::to_string(g.sw)},
      {"dh", std::to_string(g.dh)}, {"dw", std::to_string(g.dw)}, {"plane", std::to_string(g.th * g.tw)},
      {"node", spec.node}, {"kx", std::to_string(g.kx)}, {"ky", std::to_string(g.ky)},
      {"prologue", launch_prologue(op)}, {"C", std::to_string(g.C)}};
  std::string text = subst(R"(// {P}: Conv '{node}', {C} -> {Co} channels, kernel {KH}x{KW}, stride {sh}x{sw}, on {kx} x {ky} PEs:
// output tile {Co} x {th} x {tw} per PE, input tile {C} x {ih} x {iw} with its halo.
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
  const int64_t out_n = g.Co * g.th * g.tw;
  std::string Res;
  if (!spec.residual.empty() || !spec.fused_activation.empty()) {
    text += subst("  const all = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{" + std::to_string(out_n) + "} -> {Y}[i] });\n", v);
  }
  if (!spec.residual.empty()) {
    Res = add_array(op, ctx, "res", P + "_on", out_n, true);
    text += "  const res = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{" + std::to_string(out_n) + "} -> " + Res +
            "[i] });\n  @fadds(all, all, res);\n";
  }
  ASSIGN_OR_RETURN(std::string act, activation_code(spec.fused_activation, spec.activation_params, "all", Y, out_n, ctx, "  "));
  text += act;
  text += "  sys_mod.unblock_cmd_stream();\n}\n";
  op.functions = text;

  const PeSet& r = spec.region;
  op.before.push_back({true, X, r, g.C * g.ih * g.iw, g.py_tiles(py_tensor(spec.inputs[0].name), "0.0"), false,
                       spec.inputs[0].name});
  ctx.prog.weights.push_back({true, Wa, r, g.Co * Cg * g.KH * g.KW,
                              "np.tile(w('" + spec.inputs[1].name + "').reshape(1, -1), (" +
                                  std::to_string(r.w * r.h) + ", 1))",
                              true, spec.inputs[1].name});
  ctx.prog.host_weights.push_back(spec.inputs[1].name);
  const std::string bias = has_bias ? "w('" + spec.inputs[2].name + "').reshape(1, -1)" : "np.zeros((1, " + std::to_string(g.Co) + "))";
  ctx.prog.weights.push_back({true, B, r, g.Co, "np.tile(" + bias + ", (" + std::to_string(r.w * r.h) + ", 1))", true,
                              has_bias ? spec.inputs[2].name : ""});
  if (has_bias) ctx.prog.host_weights.push_back(spec.inputs[2].name);
  if (!Res.empty()) {
    op.before.push_back({true, Res, r, out_n,
                         "out_tiles(" + py_tensor(spec.residual) + ", " + std::to_string(g.th) + ", " + std::to_string(g.tw) +
                             ", " + std::to_string(g.kx) + ", " + std::to_string(g.ky) + ")",
                         false, spec.residual});
  }
  op.after.push_back({false, Y, r, g.Co * g.th * g.tw, py_tensor(spec.output.name) + " = " + g.py_untile(), false,
                      spec.output.name});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
