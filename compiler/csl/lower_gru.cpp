// GRU (one direction, linear_before_reset = 1 as PyTorch exports it): the whole sequence in one
// launch, the step loop driven by the t_coll task with no host round trip per step. On the
// partition's kx x ky PEs (the whole rectangle: the SDK's <collectives_2d> spans it) the hidden
// units go down the rows (Ht per row, with their z, r and n rows of W and R) and the input and
// hidden extents across the columns (It and Hk per column); W, R and the biases stay in SRAM,
// so does h between steps. Per step every PE runs the GEMV tiles of its columns
// (@fmacs of a W column per x element, of an R column per h element), the row's partial gate
// pre-activations are summed on the last column (mpi_x.reduce_fadds) and broadcast back
// (mpi_x.broadcast), every PE of the row applies the gates to its units, and the new h is
// gathered down each column (mpi_y.gather) and broadcast (mpi_y.broadcast) for the next step.
// The mesh simulator (devices/wse/mesh_simulator.cpp, gru) tiles it the same way.
#include <algorithm>

#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {

std::string src_of(const CslTensor& t) { return t.weight ? "w('" + t.name + "')" : py_tensor(t.name); }

}  // namespace

Status lower_gru(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  if (spec.inputs.size() < 3) return invalid_argument("expects X, W, R, got ", spec.inputs.size(), " inputs");
  const CslTensor& X = spec.inputs[0];
  const CslTensor& Wt = spec.inputs[1];
  const CslTensor& Rt = spec.inputs[2];
  const CslTensor* bias = nullptr;
  const CslTensor* h0 = nullptr;
  for (size_t i = 3; i < spec.inputs.size(); ++i) {  // absent optional inputs are left out of the plan
    const CslTensor& t = spec.inputs[i];
    if (t.shape.size() == 2 && t.weight) bias = &t;
    else if (t.shape.size() == 3) h0 = &t;
    else return not_implemented("input '", t.name, "' ", py_shape(t.shape), " (sequence_lens) has no CSL lowering");
  }
  if (X.shape.size() != 3 || Wt.shape.size() != 3 || Rt.shape.size() != 3 || !Wt.weight || !Rt.weight) {
    return invalid_argument("expects X [T, B, I] and constant W [D, 3H, I], R [D, 3H, H]; got X ", py_shape(X.shape),
                            ", W ", py_shape(Wt.shape), ", R ", py_shape(Rt.shape));
  }
  const int64_t T = X.shape[0], B = X.shape[1], I = X.shape[2], D = Wt.shape[0], H = Rt.shape[2];
  if (D != 1) return not_implemented("bidirectional GRU (", D, " directions) has no CSL lowering");
  if (Wt.shape[1] != 3 * H || Wt.shape[2] != I || Rt.shape[1] != 3 * H) {
    return invalid_argument("W ", py_shape(Wt.shape), " and R ", py_shape(Rt.shape), " do not match X ",
                            py_shape(X.shape), " and hidden size ", H);
  }
  auto lbr = spec.ints.find("linear_before_reset");
  if (lbr == spec.ints.end() || lbr->second.empty() || lbr->second[0] == 0) {
    return not_implemented("linear_before_reset = 0 needs a second GEMV per step after r; only 1 (PyTorch's) is lowered");
  }
  if (spec.floats.count("clip") && spec.floats.at("clip") > 0) return not_implemented("clip has no CSL lowering");
  auto layout = spec.ints.find("layout");
  if (layout != spec.ints.end() && !layout->second.empty() && layout->second[0] != 0) {
    return not_implemented("layout = 1 (batch-major X) has no CSL lowering");
  }
  auto acts = spec.strings.find("activations");
  if (acts != spec.strings.end() && acts->second != "Sigmoid,Tanh") {
    return not_implemented("activations ", acts->second, " (only Sigmoid, Tanh are lowered)");
  }
  auto dir_it = spec.strings.find("direction");
  const std::string dir = dir_it == spec.strings.end() ? "forward" : dir_it->second;
  if (dir != "forward" && dir != "reverse") return not_implemented("direction ", dir, " has no CSL lowering");
  const PeSet& g = spec.region;
  if (g.x0 != 0 || g.y0 != 0 || g.w != ctx.prog.width || g.h != ctx.prog.height) {
    return invalid_argument("needs the whole ", ctx.prog.width, "x", ctx.prog.height,
                            " rectangle (<collectives_2d> spans it), was placed on ", g.to_string());
  }
  const int kx = g.w, ky = g.h;
  const int64_t Ht = ceil_div(H, ky), It = ceil_div(I, kx), Hk = ceil_div(H, kx);
  const int64_t Hh = std::max<int64_t>(ky * Ht, kx * Hk);  // h as [B][Hh], zero beyond H
  const int64_t G3 = 3 * Ht, G6 = 6 * Ht;
  RETURN_IF_ERROR(ensure_collectives(ctx, op));
  const std::string P = op.launch;
  op.roles[0].second = g;
  op.roles.push_back({P + "_top", PeSet{0, 0, kx, 1}});
  op.roles.push_back({P + "_left", PeSet{0, 0, 1, ky}});
  const std::string Wa = add_array(op, ctx, "w", P + "_on", G3 * It, true);
  const std::string Ra = add_array(op, ctx, "r", P + "_on", G3 * Hk, true);
  const std::string Ba = add_array(op, ctx, "b", P + "_on", G6, true);
  const std::string Xa = add_array(op, ctx, "x", P + "_on", T * B * It, true);
  const std::string Ha = add_array(op, ctx, "h", P + "_on", B * Hh, true);
  const std::string Acc = add_array(op, ctx, "acc", P + "_on", B * G6, false);
  const std::string Red = add_array(op, ctx, "red", P + "_on", B * G6, false);
  const std::string Hn = add_array(op, ctx, "hn", P + "_on", B * Ht, false);
  const std::string Hg = ky > 1 ? add_array(op, ctx, "hg", P + "_top", ky * B * Ht, false) : Hn;
  const std::string Ya = add_array(op, ctx, "y", P + "_left", T * B * Ht, true);
  ctx.prog.imports.push_back("exp");
  op.macs_per_pe = T * B * G3 * (It + Hk);
  op.handlers.push_back({"t_coll", P + "_next"});
  auto n = [](int64_t v) { return std::to_string(v); };
  std::map<std::string, std::string> v = {
      {"P", P}, {"node", spec.node}, {"T", n(T)}, {"B", n(B)}, {"I", n(I)}, {"H", n(H)}, {"kx", n(kx)},
      {"ky", n(ky)}, {"Ht", n(Ht)}, {"It", n(It)}, {"Hk", n(Hk)}, {"Hh", n(Hh)}, {"G3", n(G3)}, {"G6", n(G6)},
      {"Ht2", n(2 * Ht)}, {"G3Ht", n(G3 + Ht)}, {"G3Ht2", n(G3 + 2 * Ht)}, {"BG6", n(B * G6)}, {"BHt", n(B * Ht)},
      {"BHh", n(B * Hh)}, {"root", n(kx - 1)}, {"W", Wa}, {"R", Ra}, {"Bi", Ba}, {"X", Xa}, {"Hs", Ha},
      {"Acc", Acc}, {"Red", Red}, {"Hn", Hn}, {"Hg", Hg}, {"Y", Ya}, {"dir", dir},
      {"t", dir == "reverse" ? n(T - 1) + " - " + P + "_step" : P + "_step"}, {"prologue", launch_prologue(op)}};
  // Collectives along a dimension of one PE are skipped: the next stage runs at once.
  const std::string row_reduce =
      kx > 1 ? subst("{P}_stage = 0;\n  mpi_x.reduce_fadds({root}, @ptrcast([*]f32, &{Acc}), @ptrcast([*]f32, &{Red}), {BG6}, t_coll);\n", v)
             : subst("@fmovs({P}_red_dsd, {P}_acc_dsd);\n  {P}_stage = 1;\n  @activate(t_coll);\n", v);
  const std::string row_bcast =
      kx > 1 ? subst("{P}_stage = 1;\n    mpi_x.broadcast({root}, @ptrcast([*]u32, &{Red}), {BG6}, t_coll);\n", v)
             : subst("{P}_stage = 1;\n    @activate(t_coll);\n", v);
  const std::string col_gather =
      ky > 1 ? subst("{P}_stage = 2;\n    mpi_y.gather(0, @ptrcast([*]u32, &{Hn}), @ptrcast([*]u32, &{Hg}), {BHt}, t_coll);\n", v)
             : subst("{P}_stage = 2;\n    @activate(t_coll);\n", v);
  const std::string col_bcast =
      ky > 1 ? subst("{P}_stage = 3;\n    mpi_y.broadcast(0, @ptrcast([*]u32, &{Hs}), {BHh}, t_coll);\n", v)
             : subst("{P}_stage = 3;\n    @activate(t_coll);\n", v);
  v["row_reduce"] = row_reduce;
  v["row_bcast"] = row_bcast;
  v["col_gather"] = col_gather;
  v["col_bcast"] = col_bcast;
  op.functions = subst(R"(// {P}: GRU '{node}' ({dir}), {T} steps of x[{B} x {I}] -> h[{B} x {H}] on {kx} x {ky} PEs: {Ht} hidden
// units per row (their z, r, n rows of W and R), {It} inputs and {Hk} hidden values per column;
// W, R, the biases and h stay in SRAM; the steps run on t_coll with no host round trip.
var {P}_step: u16 = 0;
var {P}_stage: u16 = 0;
const {P}_g_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{G3}} -> {Acc}[i] });
const {P}_wcol_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{G3}} -> {W}[i] });
const {P}_rcol_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{G3}} -> {R}[i] });
const {P}_acc_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{BG6}} -> {Acc}[i] });
const {P}_red_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{BG6}} -> {Red}[i] });

fn {P}() void {
{prologue}  summa_init();
  {P}_step = 0;
  {P}_gemv();
}

// This PE's GEMV tiles of step t: per batch row [W x_t | R h] over its columns of W and R
// (one @fmacs of a {G3}-row column per element), then the row's partials go to the last column.
fn {P}_gemv() void {
  const t: u16 = {t};
  @fmovs({P}_acc_dsd, 0.0);
  for (@range(u16, {B})) |b| {
    const gx = @increment_dsd_offset({P}_g_dsd, @as(i16, b * {G6}), f32);
    const gh = @increment_dsd_offset({P}_g_dsd, @as(i16, b * {G6} + {G3}), f32);
    for (@range(u16, {It})) |j| {
      const wcol = @increment_dsd_offset({P}_wcol_dsd, @as(i16, j * {G3}), f32);
      @fmacs(gx, gx, wcol, {X}[(t * {B} + b) * {It} + j]);
    }
    for (@range(u16, {Hk})) |j| {
      const rcol = @increment_dsd_offset({P}_rcol_dsd, @as(i16, j * {G3}), f32);
      @fmacs(gh, gh, rcol, {Hs}[b * {Hh} + summa_px * {Hk} + j]);
    }
  }
  {row_reduce}}

// The gates of this row's units from the summed pre-activations ([W x | R h] per batch row,
// z, r, n blocks of {Ht}), linear_before_reset: n = tanh(Wn x + bWn + r (Rn h + bRn)).
fn {P}_gates() void {
  for (@range(u16, {B})) |b| {
    for (@range(u16, {Ht})) |u| {
      const g = b * {G6} + u;
      const z = sigmoid_f32({Red}[g] + {Bi}[u] + {Red}[g + {G3}] + {Bi}[{G3} + u]);
      const r = sigmoid_f32({Red}[g + {Ht}] + {Bi}[{Ht} + u] + {Red}[g + {G3Ht}] + {Bi}[{G3Ht} + u]);
      const a = {Red}[g + {Ht2}] + {Bi}[{Ht2} + u] + r * ({Red}[g + {G3Ht2}] + {Bi}[{G3Ht2} + u]);
      const c = 2.0 * sigmoid_f32(2.0 * a) - 1.0;
      const hv = (1.0 - z) * c + z * {Hs}[b * {Hh} + summa_py * {Ht} + u];
      {Hn}[b * {Ht} + u] = hv;
      if ({P}_left) {
        {Y}[(({t}) * {B} + b) * {Ht} + u] = hv;
      }
    }
  }
}

// Each collective's completion: the next stage of the step, then the next step.
fn {P}_next() void {
  if ({P}_stage == 0) {
    {row_bcast}  } else if ({P}_stage == 1) {
    {P}_gates();
    {col_gather}  } else if ({P}_stage == 2) {
    if ({P}_top) {
      // The gathered [row][batch][unit] pieces as h[batch][hidden].
      for (@range(u16, {ky})) |q| {
        for (@range(u16, {B})) |b| {
          for (@range(u16, {Ht})) |u| {
            {Hs}[b * {Hh} + q * {Ht} + u] = {Hg}[(q * {B} + b) * {Ht} + u];
          }
        }
      }
    }
    {col_bcast}  } else {
    {P}_step += 1;
    if ({P}_step < {T}) {
      {P}_gemv();
    } else {
      sys_mod.unblock_cmd_stream();
    }
  }
}
)", v);
  op.functions = subst(op.functions, v);  // the stage snippets bring their own placeholders

  // run.py. W and R per PE (px, py): the rows of its units (gate-major: z, r, n blocks of Ht)
  // and the columns of its extent, column-major; the biases per row of PEs.
  ctx.prog.weights.push_back({true, Wa, g, G3 * It,
                              subst("pad(w('" + Wt.name + "')[0].reshape(3, {H}, {I}), (3, {ky} * {Ht}, {kx} * {It})).reshape(3, {ky}, {Ht}, {kx}, {It}).transpose(1, 3, 4, 0, 2)", v),
                              true, Wt.name});
  ctx.prog.weights.push_back({true, Ra, g, G3 * Hk,
                              subst("pad(w('" + Rt.name + "')[0].reshape(3, {H}, {H}), (3, {ky} * {Ht}, {kx} * {Hk})).reshape(3, {ky}, {Ht}, {kx}, {Hk}).transpose(1, 3, 4, 0, 2)", v),
                              true, Rt.name});
  ctx.prog.host_weights.push_back(Wt.name);
  ctx.prog.host_weights.push_back(Rt.name);
  const std::string b6 = bias ? "w('" + bias->name + "')[0]" : "np.zeros((6 * {H},))";
  ctx.prog.weights.push_back({true, Ba, g, G6,
                              subst("np.tile(pad(" + b6 + ".reshape(6, {H}), (6, {ky} * {Ht})).reshape(6, {ky}, {Ht}).transpose(1, 0, 2).reshape({ky}, 1, {G6}), (1, {kx}, 1))", v),
                              true, bias ? bias->name : ""});
  if (bias) ctx.prog.host_weights.push_back(bias->name);
  // x: every step's extent of each column, on every row of it; h: the initial state everywhere.
  op.before.push_back({true, Xa, g, T * B * It,
                       subst("np.tile(pad(" + src_of(X) + ".reshape({T}, {B}, {I}), ({T}, {B}, {kx} * {It})).reshape({T}, {B}, {kx}, {It}).transpose(2, 0, 1, 3).reshape(1, {kx}, -1), ({ky}, 1, 1))", v),
                       false, X.name});
  if (h0) {
    op.before.push_back({true, Ha, g, B * Hh,
                         subst("np.tile(pad(" + src_of(*h0) + ".reshape({B}, {H}), ({B}, {Hh})).reshape(1, 1, -1), ({ky}, {kx}, 1))", v),
                         false, h0->weight ? "" : h0->name});
    if (h0->weight) ctx.prog.host_weights.push_back(h0->name);
  } else {
    op.before.push_back({true, Ha, g, B * Hh, subst("np.zeros(({ky}, {kx}, {BHh}), np.float32)", v), false, ""});
  }
  op.after.push_back({false, Ya, PeSet{0, 0, 1, ky}, T * B * Ht,
                      subst(py_tensor(spec.output.name) + " = buf.reshape({ky}, {T}, {B}, {Ht}).transpose(1, 2, 0, 3).reshape({T}, {B}, {ky} * {Ht})[:, :, :{H}].reshape", v) +
                          py_shape(spec.output.shape),
                      false, spec.output.name});
  if (!spec.extra_outputs.empty() && !spec.extra_outputs[0].name.empty()) {
    const CslTensor& yh = spec.extra_outputs[0];
    op.after.push_back({false, Ha, PeSet{0, 0, 1, 1}, B * Hh,
                        subst(py_tensor(yh.name) + " = buf.reshape({B}, {Hh})[:, :{H}].reshape", v) + py_shape(yh.shape),
                        false, yh.name});
  }
  return Status::OK();
}

}  // namespace pyflame_rt::csl
