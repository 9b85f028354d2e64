// Pooling. MaxPool/AveragePool: output-stationary tiles like Conv (conv_geometry.h), per
// channel and kernel tap one @fmaxs / @fadds per output row over a strided input row, then
// AveragePool scales by 1/count (a constant, or per output position when padding is not
// counted). GlobalAveragePool/GlobalMaxPool: whole channels per PE (the flat layout with a
// chunk of ct channels), one reduction per channel.
#include "compiler/csl/conv_geometry.h"
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {

Status lower_global_pool(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const auto& xs = spec.inputs[0].shape;
  if (xs.size() < 3 || xs[0] != 1) return not_implemented("expects a [1, C, ...] input, got ", py_shape(xs));
  const int64_t C = xs[1], HW = numel(xs) / C;
  const PeSet& r = spec.region;
  const int64_t ct = ceil_div(C, static_cast<int64_t>(r.w) * r.h);
  FlatTiling in;
  in.n = C * HW;
  in.chunk = ct * HW;
  in.region = r;
  FlatTiling out;
  out.n = C;
  out.chunk = ct;
  out.region = r;
  const std::string X = flat_input(op, ctx, spec.inputs[0], "x", in, xs);
  const std::string Y = flat_output(op, ctx, spec.output, out);
  const bool mx = spec.op_type == "GlobalMaxPool";
  op.macs_per_pe = ct * HW;
  op.functions = subst(R"(// {P}: {op} '{node}', {C} channels of {HW} as {ct} channels per PE.
fn {P}() void {
{prologue}  for (@range(u16, {ct})) |c| {
    var acc: f32 = {init};
    for (@range(u16, {HW})) |i| {
      {acc}
    }
    {Y}[c] = {final};
  }
  sys_mod.unblock_cmd_stream();
}
)",
                       {{"P", op.launch}, {"op", spec.op_type}, {"node", spec.node}, {"C", std::to_string(C)},
                        {"HW", std::to_string(HW)}, {"ct", std::to_string(ct)}, {"prologue", launch_prologue(op)},
                        {"init", mx ? "-3.4028235e38" : "0.0"},
                        {"acc", mx ? "if ({X}[c * {HW} + i] > acc) {\n        acc = {X}[c * {HW} + i];\n      }" : "acc += {X}[c * {HW} + i];"},
                        {"final", mx ? "acc" : "acc * " + f32_literal(1.0 / HW)}});
  op.functions = subst(op.functions, {{"X", X}, {"Y", Y}, {"HW", std::to_string(HW)}});
  return Status::OK();
}

}  // namespace

Status lower_pool(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  if (spec.op_type == "GlobalAveragePool" || spec.op_type == "GlobalMaxPool") return lower_global_pool(spec, ctx, op);
  ASSIGN_OR_RETURN(WindowGeometry g, WindowGeometry::make(spec, 1, 1, spec.region.w, spec.region.h));
  const bool mx = spec.op_type == "MaxPool";
  auto cip = spec.ints.find("count_include_pad");
  const bool include_pad = cip != spec.ints.end() && !cip->second.empty() && cip->second[0] != 0;
  const bool padded = g.pt + g.pl + g.pb + g.pr > 0;
  const std::string P = op.launch;
  const std::string X = add_array(op, ctx, "x", P + "_on", g.C * g.ih * g.iw, true);
  const std::string Y = add_array(op, ctx, "y", P + "_on", g.C * g.th * g.tw, true);
  const bool per_position = !mx && padded && !include_pad;
  const std::string RC = per_position ? add_array(op, ctx, "rc", P + "_on", g.th * g.tw, true) : "";
  op.macs_per_pe = g.C * g.KH * g.KW * g.th * g.tw;
  std::map<std::string, std::string> v = {
      {"P", P}, {"X", X}, {"Y", Y}, {"RC", RC}, {"C", std::to_string(g.C)}, {"KH", std::to_string(g.KH)},
      {"KW", std::to_string(g.KW)}, {"th", std::to_string(g.th)}, {"tw", std::to_string(g.tw)},
      {"ih", std::to_string(g.ih)}, {"iw", std::to_string(g.iw)}, {"sh", std::to_string(g.sh)},
      {"sw", std::to_string(g.sw)}, {"dh", std::to_string(g.dh)}, {"dw", std::to_string(g.dw)},
      {"plane", std::to_string(g.th * g.tw)}, {"node", spec.node}, {"op", spec.op_type},
      {"kx", std::to_string(g.kx)}, {"ky", std::to_string(g.ky)}, {"prologue", launch_prologue(op)},
      {"init", mx ? "-3.4028235e38" : "0.0"}, {"acc", mx ? "@fmaxs" : "@fadds"}};
  std::string text = subst(R"(// {P}: {op} '{node}', {C} channels, window {KH}x{KW}, stride {sh}x{sw}, on {kx} x {ky} PEs:
// output tile {C} x {th} x {tw} per PE, input tile {C} x {ih} x {iw} with its halo.
const {P}_orow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{tw}} -> {Y}[i] });
const {P}_irow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{tw}} -> {X}[i * {sw}] });
const {P}_oplane_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{plane}} -> {Y}[i] });

fn {P}() void {
{prologue}  for (@range(u16, {C})) |c| {
    const oplane = @increment_dsd_offset({P}_oplane_dsd, @as(i16, c * {plane}), f32);
    @fmovs(oplane, {init});
    for (@range(u16, {KH})) |kh| {
      for (@range(u16, {KW})) |kw| {
        for (@range(u16, {th})) |r| {
          const orow = @increment_dsd_offset({P}_orow_dsd, @as(i16, (c * {th} + r) * {tw}), f32);
          const irow = @increment_dsd_offset({P}_irow_dsd, @as(i16, (c * {ih} + r * {sh} + kh * {dh}) * {iw} + kw * {dw}), f32);
          {acc}(orow, orow, irow);
        }
      }
    }
)", v);
  if (per_position) {
    text += subst("    const rc = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{plane}} -> {RC}[i] });\n"
                  "    @fmuls(oplane, oplane, rc);\n", v);
  } else if (!mx) {
    text += "    @fmuls(oplane, oplane, " + f32_literal(1.0 / (g.KH * g.KW)) + ");\n";
  }
  text += "  }\n  sys_mod.unblock_cmd_stream();\n}\n";
  op.functions = text;
  const PeSet& r = spec.region;
  // Max pads with the lowest f32 so a padded tap never wins; average pads with zeros.
  op.before.push_back({true, X, r, g.C * g.ih * g.iw,
                       g.py_tiles(py_tensor(spec.inputs[0].name), mx ? "-3.4028235e38" : "0.0"), false,
                       spec.inputs[0].name});
  if (per_position) {
    // 1 / (taps inside the unpadded input) per output position, tiled like the output.
    ctx.prog.weights.push_back(
        {true, RC, r, g.th * g.tw,
         subst("pool_recip({H}, {W}, {KH}, {KW}, {sh}, {sw}, {dh}, {dw}, {pt}, {pl}, {th}, {tw}, {kx}, {ky})",
               {{"H", std::to_string(g.H)}, {"W", std::to_string(g.W)}, {"KH", std::to_string(g.KH)},
                {"KW", std::to_string(g.KW)}, {"sh", std::to_string(g.sh)}, {"sw", std::to_string(g.sw)},
                {"dh", std::to_string(g.dh)}, {"dw", std::to_string(g.dw)}, {"pt", std::to_string(g.pt)},
                {"pl", std::to_string(g.pl)}, {"th", std::to_string(g.th)}, {"tw", std::to_string(g.tw)},
                {"kx", std::to_string(g.kx)}, {"ky", std::to_string(g.ky)}}),
         true, ""});
  }
  op.after.push_back({false, Y, r, g.C * g.th * g.tw, py_tensor(spec.output.name) + " = " + g.py_untile(),
                      false, spec.output.name});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
