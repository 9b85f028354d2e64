// Softmax over the trailing axis: whole rows per PE (the flat layout with rt rows of L); per
// row the maximum, exp(x - max) with the generated exp_f32, the sum, then one @fmuls by
// 1/sum over the row.
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {


Status lower_softmax(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  const auto& xs = spec.inputs[0].shape;
  auto it = spec.ints.find("axis");
  int64_t axis = it == spec.ints.end() || it->second.empty() ? -1 : it->second[0];
  if (axis < 0) axis += static_cast<int64_t>(xs.size());
  if (axis != static_cast<int64_t>(xs.size()) - 1) {
    return not_implemented("Softmax lowers over the last axis only, got axis ", axis, " of rank ", xs.size());
  }
  const RowTiling t = row_tiling(spec, -1);
  FlatTiling ft{t.rows * t.L, t.rt * t.L, spec.region};
  const std::string X = flat_input(op, ctx, spec.inputs[0], "x", ft, xs);
  const std::string Y = flat_output(op, ctx, spec.output, ft);
  ctx.prog.imports.push_back("exp");
  op.macs_per_pe = 3 * t.rt * t.L;
  op.functions = subst(R"(// {P}: Softmax '{node}', {rows} rows of {L} as {rt} rows per PE.
const {P}_yr_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{L}} -> {Y}[i] });

fn {P}() void {
{prologue}  for (@range(u16, {rt})) |r| {
    var m: f32 = -3.4028235e38;
    for (@range(u16, {L})) |i| {
      if ({X}[r * {L} + i] > m) {
        m = {X}[r * {L} + i];
      }
    }
    var s: f32 = 0.0;
    for (@range(u16, {L})) |i| {
      const e = exp_f32({X}[r * {L} + i] - m);
      {Y}[r * {L} + i] = e;
      s += e;
    }
    const yr = @increment_dsd_offset({P}_yr_dsd, @as(i16, r * {L}), f32);
    @fmuls(yr, yr, 1.0 / s);
  }
  sys_mod.unblock_cmd_stream();
}
)",
                       {{"P", op.launch}, {"node", spec.node}, {"rows", std::to_string(t.rows)},
                        {"L", std::to_string(t.L)}, {"rt", std::to_string(t.rt)}, {"X", X}, {"Y", Y},
                        {"prologue", launch_prologue(op)}});
  return Status::OK();
}

}  // namespace pyflame_rt::csl
