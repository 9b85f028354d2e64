// pyflame_rt.MultiHeadAttention (the attention core: Q, K, V already projected by the MatMuls
// before it, which lower as GEMV/SUMMA on their resident weights), tiled as the mesh simulator
// tiles it (devices/wse/mesh_simulator.cpp, attention): heads down the rows of PEs (Ht per row),
// keys across the columns (St per column). Each PE keeps its K^T and V blocks in SRAM; the
// query rows, CR per launch, are the streamed operand: they enter on column 0 and go along each
// row on the colours of the SDK's <collectives_2d> (mpi_x.broadcast). Each PE scores them
// against its keys (QK^T: one @fmacs of a K^T column per query element), the row maxima are
// gathered on the last column and broadcast back (the softmax's reduction), each PE forms
// p = exp(s - max), its sum and its P V block (PV: one @fmacs of a V row per probability), and
// mpi_x.reduce_fadds adds those on the last column, which divides by the sum. Padded keys (the
// last column's) carry a -3.4e38 key bias, so they weigh nothing.
#include <algorithm>

#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

Status lower_attention(const CslOpSpec& spec, LowerContext& ctx, OpCode& op) {
  if (spec.inputs.size() < 3) return invalid_argument("expects Q, K, V, got ", spec.inputs.size(), " inputs");
  const CslTensor& Q = spec.inputs[0];
  const CslTensor& K = spec.inputs[1];
  const CslTensor& V = spec.inputs[2];
  const CslTensor* mask = spec.inputs.size() > 3 ? &spec.inputs[3] : nullptr;
  if (Q.shape.size() != 3 || K.shape.size() != 3 || V.shape.size() != 3) {
    return invalid_argument("expects rank-3 Q, K, V, got ", py_shape(Q.shape), ", ", py_shape(K.shape), ", ",
                            py_shape(V.shape));
  }
  auto ii = [&](const char* k, int64_t dflt) {
    auto it = spec.ints.find(k);
    return it == spec.ints.end() || it->second.empty() ? dflt : it->second[0];
  };
  const bool bf = ii("batch_first", 1) != 0;
  const int64_t heads = ii("num_heads", 0);
  const int64_t B = Q.shape[bf ? 0 : 1], L = Q.shape[bf ? 1 : 0], S = K.shape[bf ? 1 : 0];
  const int64_t E = Q.shape[2], Ev = V.shape[2];
  if (heads <= 0 || E % heads != 0 || Ev % heads != 0 || K.shape[2] != E) {
    return invalid_argument("num_heads ", heads, " must divide the widths of Q ", py_shape(Q.shape), " and V ",
                            py_shape(V.shape), " (K ", py_shape(K.shape), ")");
  }
  if (mask && mask->shape.size() > 4) return invalid_argument("mask of rank <= 4 expected, got ", py_shape(mask->shape));
  const int64_t dk = E / heads, dv = Ev / heads, dv1 = dv + 1;
  auto sc = spec.floats.find("scale");
  const double scale = sc == spec.floats.end() ? 1.0 : sc->second;
  const PeSet& g = spec.region;
  if (g.x0 != 0 || g.y0 != 0 || g.w != ctx.prog.width || g.h != ctx.prog.height) {
    return invalid_argument("needs the whole ", ctx.prog.width, "x", ctx.prog.height,
                            " rectangle (<collectives_2d> spans it), was placed on ", g.to_string());
  }
  const int kx = g.w, ky = g.h;
  const int64_t Ht = ceil_div(heads, ky), St = ceil_div(S, kx);
  // Query rows per launch: what the SRAM left free holds next to the K^T, V blocks (the share
  // lets later ops of the partition fit, as for GEMV's row chunks).
  const int64_t fixed = Ht * dk * St + Ht * St * dv + St;
  const int64_t per_row = Ht * dk + Ht * St * (mask ? 2 : 1) + Ht + kx * Ht + 2 * Ht * dv1;
  const int64_t free = free_bytes(ctx, g) / 4;
  const int64_t avail = spec.sram_budget_bytes > 0
                            ? spec.sram_budget_bytes / 4 - fixed  // the plan's figure for this op
                            : static_cast<int64_t>(std::max<int64_t>(0, free - fixed) * ctx.chunk_share);
  const int64_t CR = std::clamp<int64_t>(avail / per_row, 1, L);
  const int64_t nb = ceil_div(L, CR), CRHt = CR * Ht;
  RETURN_IF_ERROR(ensure_collectives(ctx, op));
  const std::string P = op.launch;
  op.roles[0].second = g;
  op.roles.push_back({P + "_root", PeSet{kx - 1, 0, 1, ky}});
  const std::string Qa = add_array(op, ctx, "q", P + "_on", CRHt * dk, true);
  const std::string Ka = add_array(op, ctx, "kt", P + "_on", Ht * dk * St, true);
  const std::string Va = add_array(op, ctx, "v", P + "_on", Ht * St * dv, true);
  const std::string KB = add_array(op, ctx, "kb", P + "_on", St, true);
  const std::string Ma = mask ? add_array(op, ctx, "mask", P + "_on", CRHt * St, true) : "";
  const std::string Sa = add_array(op, ctx, "s", P + "_on", CRHt * St, false);
  const std::string Mx = add_array(op, ctx, "m", P + "_on", CRHt, false);
  const std::string MG = kx > 1 ? add_array(op, ctx, "mg", P + "_root", kx * CRHt, false) : Mx;
  const std::string Acc = add_array(op, ctx, "acc", P + "_on", CRHt * dv1, false);
  const std::string Red = kx > 1 ? add_array(op, ctx, "y", P + "_root", CRHt * dv1, true) : Acc;
  if (kx == 1) ctx.prog.arrays.back().host_visible = true;  // acc is the result
  ctx.prog.imports.push_back("exp");
  op.macs_per_pe = CRHt * St * (dk + dv);
  op.chunks = static_cast<int>(B * nb);
  op.handlers.push_back({"t_coll", P + "_next"});
  auto n = [](int64_t v) { return std::to_string(v); };
  std::map<std::string, std::string> v = {
      {"P", P}, {"node", spec.node}, {"B", n(B)}, {"L", n(L)}, {"S", n(S)}, {"heads", n(heads)}, {"dk", n(dk)},
      {"dv", n(dv)}, {"dv1", n(dv1)}, {"kx", n(kx)}, {"ky", n(ky)}, {"Ht", n(Ht)}, {"St", n(St)}, {"CR", n(CR)},
      {"nb", n(nb)}, {"CRHt", n(CRHt)}, {"CRHtdk", n(CRHt * dk)}, {"CRHtdv1", n(CRHt * dv1)}, {"root", n(kx - 1)},
      {"Q", Qa}, {"KT", Ka}, {"V", Va}, {"KB", KB}, {"MASK", Ma}, {"S_", Sa}, {"M", Mx}, {"MG", MG}, {"Acc", Acc},
      {"Red", Red}, {"scale", f32_literal(scale)}, {"chunks", n(B * nb)}, {"prologue", launch_prologue(op)}};
  // Collectives along a row of one PE are skipped: the next stage runs at once.
  v["q_in"] = kx > 1 ? subst("mpi_x.broadcast(0, @ptrcast([*]u32, &{Q}), {CRHtdk}, t_coll);\n", v) : "@activate(t_coll);\n";
  v["gather"] = kx > 1 ? subst("mpi_x.gather({root}, @ptrcast([*]u32, &{M}), @ptrcast([*]u32, &{MG}), {CRHt}, t_coll);\n", v)
                       : "@activate(t_coll);\n";
  v["m_back"] = kx > 1 ? subst("mpi_x.broadcast({root}, @ptrcast([*]u32, &{M}), {CRHt}, t_coll);\n", v) : "@activate(t_coll);\n";
  v["sum"] = kx > 1 ? subst("mpi_x.reduce_fadds({root}, @ptrcast([*]f32, &{Acc}), @ptrcast([*]f32, &{Red}), {CRHtdv1}, t_coll);\n", v)
                    : "@activate(t_coll);\n";
  v["mask_decl"] = mask ? subst("const {P}_mrow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{St}} -> {MASK}[i] });\n", v) : "";
  v["mask_add"] = mask ? subst("      @fadds(srow, srow, @increment_dsd_offset({P}_mrow_dsd, @as(i16, row * {St}), f32));\n", v) : "";
  op.functions = subst(R"(// {P}: MultiHeadAttention '{node}', {B} x {L} queries, {heads} heads (dk {dk}, dv {dv}), {S} keys, on
// {kx} x {ky} PEs: {Ht} head(s) per row, {St} keys per column (K^T and V blocks in SRAM), {CR}
// query rows per launch ({chunks} launches). Stages on t_coll: rows in, scores and maxima,
// maxima gathered and sent back, exp and P V, sums on the last column, which divides.
var {P}_stage: u16 = 0;
const {P}_kcol_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{St}} -> {KT}[i] });
const {P}_srow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{St}} -> {S_}[i] });
const {P}_kb_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{St}} -> {KB}[i] });
const {P}_vrow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{dv}} -> {V}[i] });
const {P}_orow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{dv}} -> {Acc}[i] });
const {P}_yrow_dsd = @get_dsd(mem1d_dsd, .{ .tensor_access = |i|{{dv}} -> {Red}[i] });
{mask_decl}
fn {P}() void {
{prologue}  summa_init();
  {P}_stage = 0;
  {q_in}}

// QK^T of this PE's keys: per (query row, head) one @fmacs of a K^T column per query element,
// scaled, plus the key bias (and the mask); then the row's maximum over these keys.
fn {P}_scores() void {
  for (@range(u16, {CR})) |r| {
    for (@range(u16, {Ht})) |h| {
      const row = r * {Ht} + h;
      const srow = @increment_dsd_offset({P}_srow_dsd, @as(i16, row * {St}), f32);
      @fmovs(srow, 0.0);
      for (@range(u16, {dk})) |d| {
        const kcol = @increment_dsd_offset({P}_kcol_dsd, @as(i16, (h * {dk} + d) * {St}), f32);
        @fmacs(srow, srow, kcol, {Q}[row * {dk} + d]);
      }
      @fmuls(srow, srow, {scale});
      @fadds(srow, srow, {P}_kb_dsd);
{mask_add}      var m: f32 = -3.4028235e38;
      for (@range(u16, {St})) |j| {
        if ({S_}[row * {St} + j] > m) {
          m = {S_}[row * {St} + j];
        }
      }
      {M}[row] = m;
    }
  }
}

// With the rows' maxima: p = exp(s - max), its sum and P V over this PE's keys (one @fmacs of
// a V row per probability), as [sum, o_0 .. o_{dv}-1] per (query row, head).
fn {P}_weights() void {
  for (@range(u16, {CRHt})) |row| {
    const m = {M}[row];
    const orow = @increment_dsd_offset({P}_orow_dsd, @as(i16, row * {dv1} + 1), f32);
    @fmovs(orow, 0.0);
    var s: f32 = 0.0;
    for (@range(u16, {St})) |j| {
      const p = exp_f32({S_}[row * {St} + j] - m);
      s += p;
      const vrow = @increment_dsd_offset({P}_vrow_dsd, @as(i16, ((row % {Ht}) * {St} + j) * {dv}), f32);
      @fmacs(orow, orow, vrow, p);
    }
    {Acc}[row * {dv1}] = s;
  }
}

// Each collective's completion: the next stage.
fn {P}_next() void {
  if ({P}_stage == 0) {
    {P}_scores();
    {P}_stage = 1;
    {gather}  } else if ({P}_stage == 1) {
    if ({P}_root) {
      for (@range(u16, {CRHt})) |row| {
        var m: f32 = {MG}[row];
        for (@range(u16, {kx})) |c| {
          if ({MG}[c * {CRHt} + row] > m) {
            m = {MG}[c * {CRHt} + row];
          }
        }
        {M}[row] = m;
      }
    }
    {P}_stage = 2;
    {m_back}  } else if ({P}_stage == 2) {
    {P}_weights();
    {P}_stage = 3;
    {sum}  } else {
    if ({P}_root) {
      for (@range(u16, {CRHt})) |row| {
        const yrow = @increment_dsd_offset({P}_yrow_dsd, @as(i16, row * {dv1} + 1), f32);
        @fmuls(yrow, yrow, 1.0 / {Red}[row * {dv1}]);
      }
    }
    sys_mod.unblock_cmd_stream();
  }
}
)", v);
  op.functions = subst(op.functions, v);

  // run.py. Chunk c is batch c // nb, query rows (c % nb) * CR ...
  auto src = [&](const CslTensor& t) {
    const std::string s = t.weight ? "w('" + t.name + "')" : py_tensor(t.name);
    return bf ? s : "np.transpose(" + s + ", (1, 0, 2))";
  };
  v["qs"] = src(Q);
  v["ks"] = src(K);
  v["vs"] = src(V);
  op.prep.push_back(subst("q_{P} = pad({qs}.reshape({B}, {L}, {heads}, {dk}), ({B}, {nb} * {CR}, {ky} * {Ht}, {dk})).reshape({B} * {nb}, {CR}, {ky}, {Ht}, {dk}).transpose(0, 2, 1, 3, 4)", v));
  op.prep.push_back(subst("k_{P} = pad({ks}.reshape({B}, {S}, {heads}, {dk}), ({B}, {kx} * {St}, {ky} * {Ht}, {dk})).reshape({B}, {kx}, {St}, {ky}, {Ht}, {dk}).transpose(0, 3, 1, 4, 5, 2)", v));
  op.prep.push_back(subst("v_{P} = pad({vs}.reshape({B}, {S}, {heads}, {dv}), ({B}, {kx} * {St}, {ky} * {Ht}, {dv})).reshape({B}, {kx}, {St}, {ky}, {Ht}, {dv}).transpose(0, 3, 1, 4, 2, 5)", v));
  op.before.push_back({true, Qa, PeSet{0, 0, 1, ky}, CRHt * dk, subst("q_{P}[c]", v), false, Q.name, ""});
  // K and V stay in SRAM for all launches of one batch row's queries.
  const std::string first = nb > 1 ? subst("c % {nb} == 0", v) : "";
  op.before.push_back({true, Ka, g, Ht * dk * St, subst("k_{P}[c // {nb}]", v), false, K.name, "", first});
  op.before.push_back({true, Va, g, Ht * St * dv, subst("v_{P}[c // {nb}]", v), false, V.name, "", first});
  if (mask) {
    const std::string ms = mask->weight ? "w('" + mask->name + "')" : py_tensor(mask->name);
    op.prep.push_back(subst("mask_{P} = pad(np.broadcast_to(" + ms + ", ({B}, {heads}, {L}, {S})), ({B}, {ky} * {Ht}, {nb} * {CR}, {kx} * {St})).reshape({B}, {ky}, {Ht}, {nb}, {CR}, {kx}, {St}).transpose(0, 3, 1, 5, 4, 2, 6).reshape({B} * {nb}, {ky}, {kx}, -1)", v));
    op.before.push_back({true, Ma, g, CRHt * St, subst("mask_{P}[c]", v), false, mask->weight ? "" : mask->name, ""});
    if (mask->weight) ctx.prog.host_weights.push_back(mask->name);
  }
  for (const CslTensor* t : {&Q, &K, &V}) {
    if (t->weight) ctx.prog.host_weights.push_back(t->name);
  }
  ctx.prog.weights.push_back({true, KB, g, St,
                              subst("np.tile(np.where(np.arange({kx} * {St}) < {S}, 0.0, -3.4028235e38).reshape(1, {kx}, {St}), ({ky}, 1, 1))", v),
                              true, ""});
  op.prep.push_back(subst("acc_{P} = np.zeros(({B} * {nb}, {CR}, {ky} * {Ht}, {dv}), np.float32)", v));
  op.after.push_back({false, Red, PeSet{kx - 1, 0, 1, ky}, CRHt * dv1,
                      subst("acc_{P}[c] = buf.reshape({ky}, {CR}, {Ht}, {dv1})[..., 1:].transpose(1, 0, 2, 3).reshape({CR}, {ky} * {Ht}, {dv})", v),
                      false, spec.output.name, ""});
  std::string post = py_tensor(spec.output.name) + subst(" = acc_{P}.reshape({B}, {nb} * {CR}, {ky} * {Ht}, {dv})[:, :{L}, :{heads}].reshape({B}, {L}, {heads} * {dv})", v);
  if (!bf) post += ".transpose(1, 0, 2)";
  op.post.push_back(post + ".reshape" + py_shape(spec.output.shape));
  return Status::OK();
}

}  // namespace pyflame_rt::csl
