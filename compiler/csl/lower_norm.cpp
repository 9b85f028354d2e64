// Normalisation. BatchNormalization (inference): whole channels per PE (the flat layout with
// a chunk of ct channels), y = x * a[c] + b[c] with a = gamma / sqrt(var + eps) and
// b = beta - mean * a folded by run.py when it loads the weights: two DSD ops per channel.
// LayerNormalization: whole rows of the normalised trailing dims per PE; mean and variance by
// scalar loops, then centring, scaling and the affine part as DSD ops over the row.
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {

Status lower_batch_norm(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const auto& xs = spec.inputs[0].shape;
  if (xs.size() < 2 || xs[0] != 1 || spec.inputs.size() < 5) {
    return not_implemented("expects a [1, C, ...] input and scale, B, mean, var; got input ", py_shape(xs));
  }
  for (size_t i = 1; i < 5; ++i) {
    if (!spec.inputs[i].weight) return not_implemented("input ", i, " ('", spec.inputs[i].name, "') must be constant");
  }
  const int64_t C = xs[1], HW = numel(xs) / C;
  const PeSet& r = spec.region;
  const int64_t npes = static_cast<int64_t>(r.w) * r.h, ct = ceil_div(C, npes);
  FlatTiling in{C * HW, ct * HW, r};
  const std::string X = flat_input(op, ctx, spec.inputs[0], "x", in, xs);
  const std::string Y = flat_output(op, ctx, spec.output, in);
  const std::string A = add_array(op, ctx, "a", op.launch + "_on", ct, true);
  const std::string B = add_array(op, ctx, "b", op.launch + "_on", ct, true);
  auto eps_it = spec.floats.find("epsilon");
  const std::string eps = f32_literal(eps_it == spec.floats.end() ? 1e-5 : eps_it->second);
  const std::string scale = "(w('" + spec.inputs[1].name + "') / np.sqrt(w('" + spec.inputs[4].name + "') + " + eps + "))";
  const std::string n = std::to_string(npes * ct);
  ctx.prog.weights.push_back({true, A, r, ct, "pad(" + scale + ", (" + n + ",))", true, spec.inputs[1].name});
  ctx.prog.weights.push_back({true, B, r, ct,
                              "pad(w('" + spec.inputs[2].name + "') - w('" + spec.inputs[3].name + "') * " + scale +
                                  ", (" + n + ",))",
                              true, spec.inputs[2].name});
  for (size_t i = 1; i < 5; ++i) ctx.prog.host_weights.push_back(spec.inputs[i].name);
  op.macs_per_pe = ct * HW;
  std::string relu = spec.fused_activation == "Relu" ? "    @fmaxs(yc, yc, 0.0);\n" : "";
  op.functions = subst(R"(// {P}: BatchNormalization '{node}', {C} channels of {HW} as {ct} channels per PE.
const {P}_xc_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{HW}} -> {X}[i] });
const {P}_yc_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{HW}} -> {Y}[i] });

fn {P}() void {
{prologue}  for (@range(u16, {ct})) |c| {
    const xc = @increment_dsd_offset({P}_xc_dsd, @as(i16, c * {HW}), f32);
    const yc = @increment_dsd_offset({P}_yc_dsd, @as(i16, c * {HW}), f32);
    @fmuls(yc, xc, {A}[c]);
    @fadds(yc, yc, {B}[c]);
{relu}  }
  sys_mod.unblock_cmd_stream();
}
)",
                       {{"P", op.launch}, {"node", spec.node}, {"C", std::to_string(C)}, {"HW", std::to_string(HW)},
                        {"ct", std::to_string(ct)}, {"X", X}, {"Y", Y}, {"A", A}, {"B", B},
                        {"prologue", launch_prologue(op)}, {"relu", relu}});
  return Status::OK();
}

}  // namespace

RowTiling row_tiling(const CslOpSpec& spec, int64_t default_axis) {
  const auto& xs = spec.inputs[0].shape;
  auto it = spec.ints.find("axis");
  int64_t axis = it == spec.ints.end() || it->second.empty() ? default_axis : it->second[0];
  if (axis < 0) axis += static_cast<int64_t>(xs.size());
  RowTiling t;
  t.L = 1;
  for (size_t i = static_cast<size_t>(std::max<int64_t>(axis, 0)); i < xs.size(); ++i) t.L *= xs[i];
  t.rows = numel(xs) / std::max<int64_t>(t.L, 1);
  t.rt = ceil_div(t.rows, static_cast<int64_t>(spec.region.w) * spec.region.h);
  return t;
}

Status lower_norm(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  if (spec.op_type == "BatchNormalization") return lower_batch_norm(spec, ctx, op);
  if (spec.inputs.size() < 2 || !spec.inputs[1].weight) return not_implemented("LayerNormalization needs a constant scale");
  const RowTiling t = row_tiling(spec, -1);
  FlatTiling ft{t.rows * t.L, t.rt * t.L, spec.region};
  const std::string X = flat_input(op, ctx, spec.inputs[0], "x", ft, spec.inputs[0].shape);
  const std::string Y = flat_output(op, ctx, spec.output, ft);
  const std::string G = add_array(op, ctx, "gamma", op.launch + "_on", t.L, true);
  const std::string Bt = add_array(op, ctx, "beta", op.launch + "_on", t.L, true);
  const std::string npes = std::to_string(spec.region.w * spec.region.h);
  const bool has_beta = spec.inputs.size() > 2 && spec.inputs[2].weight;
  ctx.prog.weights.push_back({true, G, spec.region, t.L,
                              "np.tile(w('" + spec.inputs[1].name + "').reshape(1, -1), (" + npes + ", 1))", true,
                              spec.inputs[1].name});
  ctx.prog.host_weights.push_back(spec.inputs[1].name);
  const std::string beta = has_beta ? "w('" + spec.inputs[2].name + "').reshape(1, -1)" : "np.zeros((1, " + std::to_string(t.L) + "))";
  ctx.prog.weights.push_back({true, Bt, spec.region, t.L, "np.tile(" + beta + ", (" + npes + ", 1))", true,
                              has_beta ? spec.inputs[2].name : ""});
  if (has_beta) ctx.prog.host_weights.push_back(spec.inputs[2].name);
  auto eps_it = spec.floats.find("epsilon");
  op.macs_per_pe = 4 * t.rt * t.L;
  op.functions = subst(R"(// {P}: LayerNormalization '{node}', {rows} rows of {L} as {rt} rows per PE.
const {P}_xr_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{L}} -> {X}[i] });
const {P}_yr_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{L}} -> {Y}[i] });
const {P}_g_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{L}} -> {G}[i] });
const {P}_b_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{L}} -> {B}[i] });

fn {P}() void {
{prologue}  for (@range(u16, {rt})) |r| {
    const xr = @increment_dsd_offset({P}_xr_dsd, @as(i16, r * {L}), f32);
    const yr = @increment_dsd_offset({P}_yr_dsd, @as(i16, r * {L}), f32);
    var s: f32 = 0.0;
    for (@range(u16, {L})) |i| {
      s += {X}[r * {L} + i];
    }
    @fadds(yr, xr, -s * {invL});
    var q: f32 = 0.0;
    for (@range(u16, {L})) |i| {
      const d = {Y}[r * {L} + i];
      q += d * d;
    }
    @fmuls(yr, yr, 1.0 / math_lib.sqrt(q * {invL} + {eps}));
    @fmuls(yr, yr, {P}_g_dsd);
    @fadds(yr, yr, {P}_b_dsd);
  }
  sys_mod.unblock_cmd_stream();
}
)",
                       {{"P", op.launch}, {"node", spec.node}, {"rows", std::to_string(t.rows)},
                        {"L", std::to_string(t.L)}, {"rt", std::to_string(t.rt)}, {"X", X}, {"Y", Y}, {"G", G},
                        {"B", Bt}, {"prologue", launch_prologue(op)}, {"invL", f32_literal(1.0 / t.L)},
                        {"eps", f32_literal(eps_it == spec.floats.end() ? 1e-5 : eps_it->second)}});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
