// Helpers shared by the op lowerings, and lower_op's dispatch by op type.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <set>

#include "compiler/csl/csl_checker.h"
#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

std::string f32_literal(double v) {
  if (std::isinf(v)) return v > 0 ? "3.4028235e38" : "-3.4028235e38";  // CSL has no inf literal
  char buf[32];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof(buf), "%.*g", prec, v);
    if (static_cast<float>(std::strtod(buf, nullptr)) == static_cast<float>(v)) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string subst(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string pat = "{" + key + "}";
    for (size_t pos = text.find(pat); pos != std::string::npos; pos = text.find(pat, pos + value.size())) {
      text.replace(pos, pat.size(), value);
    }
  }
  return text;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string py_shape(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string py_tensor(const std::string& name) { return "t['" + name + "']"; }

const PeSet& role_set(const OpCode& op, const std::string& role) {
  for (const auto& r : op.roles) {
    if (r.first == role) return r.second;
  }
  return op.region;
}

std::string add_array(OpCode& op, LowerContext& ctx, const std::string& suffix, const std::string& role,
                      int64_t elems, bool host_visible) {
  CslArray a;
  a.name = "op" + std::to_string(op.index) + "_" + suffix;
  a.role = role;
  a.pes = role_set(op, role);
  a.elems = elems;
  a.host_visible = host_visible;
  ctx.prog.arrays.push_back(a);
  return a.name;
}

namespace {
// Apart by at least one PE: a route's EAST/SOUTH... hop must not land on the other set.
bool disjoint(const PeSet& a, const PeSet& b) {
  return a.x0 + a.w < b.x0 || b.x0 + b.w < a.x0 || a.y0 + a.h < b.y0 || b.y0 + b.h < a.y0;
}
}  // namespace

Expected<int> LowerContext::alloc_color(const OpCode& op, const PeSet& region, const std::string& purpose) {
  const int budget_n = budget.program_colors();
  std::set<int> used(prog.colors.begin(), prog.colors.end());
  int pick = -1;
  for (int c = 0; c < budget_n && pick < 0; ++c) {
    if (!used.count(c)) pick = c;
  }
  // Reuse: ops run one after another, so a colour is free again where its routes do not reach.
  for (int c = 0; c < budget_n && pick < 0; ++c) {
    bool ok = !prog.library_routed.count(c);
    for (const RouteRule& r : prog.routes) ok = ok && (r.color != c || disjoint(r.pes, region));
    for (const OpCode& o : prog.ops) {
      for (const ColorUse& u : o.uses) ok = ok && (u.color != c || disjoint(u.pes, region));
    }
    for (const ColorUse& u : op.uses) ok = ok && u.color != c;
    if (ok) pick = c;
  }
  if (pick < 0) {
    return make_status(StatusCode::kResourceExhausted, "partition ", prog.partition, ": op '", op.node,
                       "' needs a colour for ", purpose, " on PEs ", region.to_string(), " but all ", budget_n,
                       " program colours (", budget.routable_colors, " routable - ", budget.memcpy_colors,
                       " for memcpy) are routed there");
  }
  if (!used.count(pick)) {
    prog.colors.push_back(pick);
    std::sort(prog.colors.begin(), prog.colors.end());
  }
  std::string& p = prog.color_purpose[pick];
  p += (p.empty() ? "" : "; ") + ("op" + std::to_string(op.index) + " " + purpose);
  return pick;
}

std::string lowering_of(const CslOpSpec& spec) {
  static const std::set<std::string> eltwise = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Exp", "Clip", "Add",
                                                "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "HardSigmoid",
                                                "HardSwish", "Identity", "Silu"};
  const std::string& t = spec.op_type;
  if (t == "Gemm" || t == "MatMul" || t == "FusedMatMul") {
    if (spec.inputs.size() < 2) return "";
    // activation x activation (2-D B): GEMV with B's tiles copied in per launch instead of once.
    if (!spec.inputs[1].weight) return spec.inputs[1].shape.size() == 2 ? "gemv" : "";
    const PeSet& r = spec.region;
    // SUMMA needs the square grid the collectives library spans: the whole rectangle.
    int64_t rows = spec.inputs[0].shape.empty() ? 1 : numel(spec.inputs[0].shape) / spec.inputs[0].shape.back();
    // (asked for by the plan, or many rows: streaming them through GEMV would serialise them).
    if (r.w == r.h && r.w > 1 && r.x0 == 0 && r.y0 == 0 && rows >= r.w &&
        (spec.ints.count("summa") || rows >= 4 * static_cast<int64_t>(r.w))) {
      return "summa";
    }
    return "gemv";
  }
  if (t == "Conv" || t == "FusedConv") return "conv_os";
  if (t == "MaxPool" || t == "AveragePool" || t == "GlobalAveragePool" || t == "GlobalMaxPool") return "pool";
  if (t == "BatchNormalization" || t == "LayerNormalization") return "norm";
  if (t == "Softmax") return "softmax";
  if (t == "MultiHeadAttention") return "attention";
  if (t == "GRU") return "gru";
  if (eltwise.count(t)) return "eltwise";
  static const std::set<std::string> movement = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Dropout",
                                                 "Expand", "Transpose", "Concat", "Slice"};
  if (movement.count(t)) return "host";
  return "";
}

Status lower_op(const CslOpSpec& spec, LowerContext& ctx) {
  OpCode op;
  op.index = static_cast<int>(ctx.prog.ops.size());
  op.node = spec.node;
  op.op_type = spec.op_type;
  op.region = spec.region;
  op.launch = "op" + std::to_string(op.index);
  op.lowering = lowering_of(spec);
  op.roles.push_back({op.launch + "_on", spec.region});
  const PeSet& r = spec.region;
  if (r.empty() || r.x0 < 0 || r.y0 < 0 || r.x0 + r.w > ctx.prog.width || r.y0 + r.h > ctx.prog.height) {
    return invalid_argument("partition ", ctx.prog.partition, ": op '", spec.node, "' is placed on PEs ",
                            r.to_string(), ", outside the ", ctx.prog.width, "x", ctx.prog.height, " rectangle");
  }
  Status st;
  if (op.lowering == "gemv") st = lower_gemv(spec, ctx, op);
  else if (op.lowering == "summa") st = lower_summa(spec, ctx, op);
  else if (op.lowering == "conv_os") st = lower_conv(spec, ctx, op);
  else if (op.lowering == "pool") st = lower_pool(spec, ctx, op);
  else if (op.lowering == "eltwise") st = lower_eltwise(spec, ctx, op);
  else if (op.lowering == "norm") st = lower_norm(spec, ctx, op);
  else if (op.lowering == "softmax") st = lower_softmax(spec, ctx, op);
  else if (op.lowering == "host") st = lower_host(spec, ctx, op);
  else if (op.lowering == "attention") st = lower_attention(spec, ctx, op);
  else if (op.lowering == "gru") st = lower_gru(spec, ctx, op);
  else st = not_implemented("op ", spec.op_type, " has no CSL lowering");
  if (!st.ok()) return st.with_context(spec.op_type + " '" + spec.node + "': ");
  ctx.prog.ops.push_back(std::move(op));
  return Status::OK();
}

}  // namespace pyflame_rt::csl

namespace pyflame_rt::csl {

std::string FlatTiling::key() const { return "flat:" + std::to_string(n) + ":" + std::to_string(chunk) + ":" + region.to_string(); }

FlatTiling flat_tiling(int64_t n, const PeSet& region) {
  FlatTiling ft;
  ft.n = n;
  ft.region = region;
  ft.chunk = ceil_div(n, static_cast<int64_t>(region.w) * region.h);
  return ft;
}

std::string flat_input(OpCode& op, LowerContext& ctx, const CslTensor& t, const std::string& suffix,
                       const FlatTiling& ft, const std::vector<int64_t>& shape) {
  auto it = ctx.resident.find(t.name);
  if (!t.weight && numel(t.shape) == ft.n && it != ctx.resident.end() && it->second.tiling == ft.key()) {
    return it->second.array;
  }
  const std::string name = add_array(op, ctx, suffix, op.launch + "_on", ft.chunk, true);
  const std::string src = t.weight ? "w('" + t.name + "')" : py_tensor(t.name);
  const std::string expr = "pad(np.broadcast_to(" + src + ", " + py_shape(shape) + ").reshape(-1), (" +
                           std::to_string(ft.chunk * ft.region.w * ft.region.h) + ",))";
  HostTransfer tr{true, name, ft.region, ft.chunk, expr, t.weight, t.name};
  if (t.weight) {
    ctx.prog.weights.push_back(tr);
    ctx.prog.host_weights.push_back(t.name);
  } else {
    op.before.push_back(tr);
  }
  return name;
}

std::string flat_output(OpCode& op, LowerContext& ctx, const CslTensor& t, const FlatTiling& ft) {
  const std::string name = add_array(op, ctx, "y", op.launch + "_on", ft.chunk, true);
  ctx.resident[t.name] = {name, ft.key()};
  op.after.push_back({false, name, ft.region, ft.chunk,
                      py_tensor(t.name) + " = buf.reshape(-1)[:" + std::to_string(ft.n) + "].reshape" + py_shape(t.shape),
                      false, t.name});
  return name;
}

int64_t free_bytes(LowerContext& ctx, const PeSet& region) {
  int64_t used = 0;
  for_each_pe_class(ctx.prog, [&](int x, int y, int64_t) {
    if (region.contains(x, y)) used = std::max(used, ctx.prog.array_bytes_at(x, y));
  });
  return ctx.budget.data_bytes() - used;
}

// The collectives library's colours, entry tasks and queues: one set per partition, shared by
// its ops that use it (SUMMA, MultiHeadAttention, GRU: they run one after another, all on the
// whole rectangle, which is what the library spans).
Status ensure_collectives(LowerContext& ctx, OpCode& op) {
  CslProgram& prog = ctx.prog;
  if (!prog.layout_imports.empty()) return Status::OK();
  int c[4];
  for (int i = 0; i < 4; ++i) {
    ASSIGN_OR_RETURN(c[i], ctx.alloc_color(op, PeSet{0, 0, prog.width, prog.height},
                                           i < 2 ? "collectives_2d row broadcast" : "collectives_2d column broadcast"));
    prog.library_routed.insert(c[i]);
  }
  prog.layout_imports.push_back("const c2d = @import_module(\"<collectives_2d/params>\");");
  prog.layout_params.push_back(subst(
      ".c2d_params = c2d.get_params(x, y, .{ .x_colors = .{ @get_color({c0}), @get_color({c1}) }, "
      ".x_entrypoints = .{ t_c2d_x0, t_c2d_x1 }, .y_colors = .{ @get_color({c2}), @get_color({c3}) }, "
      ".y_entrypoints = .{ t_c2d_y0, t_c2d_y1 } })",
      {{"c0", std::to_string(c[0])}, {"c1", std::to_string(c[1])}, {"c2", std::to_string(c[2])},
       {"c3", std::to_string(c[3])}}));
  prog.pe_params.push_back("param c2d_params: comptime_struct;");
  prog.imports.push_back("collectives");
  return Status::OK();
}

std::string launch_prologue(const OpCode& op) {
  return subst("  cur_op = {i};\n  if (!{P}_on) {\n    sys_mod.unblock_cmd_stream();\n    return;\n  }\n",
               {{"i", std::to_string(op.index)}, {"P", op.launch}});
}

}  // namespace pyflame_rt::csl

namespace pyflame_rt::csl {

Expected<std::string> activation_code(const std::string& act, const std::vector<double>& params, const std::string& dsd,
                                      const std::string& array, int64_t n, LowerContext& ctx, const std::string& indent) {
  auto p = [&](size_t i, double dflt) { return i < params.size() ? params[i] : dflt; };
  std::vector<std::string> lines;
  auto loop = [&](const std::string& expr) {
    ctx.prog.imports.push_back("exp");
    lines.push_back("for (@range(u16, " + std::to_string(n) + ")) |i| {");
    lines.push_back("  const v = " + array + "[i];");
    lines.push_back("  " + array + "[i] = " + expr + ";");
    lines.push_back("}");
  };
  if (act.empty()) return std::string();
  if (act == "Relu") {
    lines.push_back("@fmaxs(" + dsd + ", " + dsd + ", 0.0);");
  } else if (act == "Clip") {
    lines.push_back("@fmaxs(" + dsd + ", " + dsd + ", " + f32_literal(p(0, -INFINITY)) + ");");
    lines.push_back("@fmins(" + dsd + ", " + dsd + ", " + f32_literal(p(1, INFINITY)) + ");");
  } else if (act == "LeakyRelu") {
    loop("if (v > 0.0) v else v * " + f32_literal(p(0, 0.01)));
  } else if (act == "HardSigmoid" || act == "HardSwish") {
    const double a = act == "HardSwish" ? 1.0 / 6 : p(0, 0.2), b = act == "HardSwish" ? 0.5 : p(1, 0.5);
    const std::string hs = "clamp01_f32(v * " + f32_literal(a) + " + " + f32_literal(b) + ")";
    loop(act == "HardSwish" ? "v * " + hs : hs);
  } else if (act == "Sigmoid") {
    loop("sigmoid_f32(v)");
  } else if (act == "Tanh") {
    loop("2.0 * sigmoid_f32(2.0 * v) - 1.0");
  } else if (act == "Silu" || act == "SiLU" || act == "Swish") {
    loop("v * sigmoid_f32(v)");
  } else if (act == "Elu") {
    loop("if (v > 0.0) v else " + f32_literal(p(0, 1.0)) + " * (exp_f32(v) - 1.0)");
  } else {
    return not_implemented("fused activation ", act, " has no CSL lowering");
  }
  std::string out;
  for (const std::string& l : lines) out += indent + l + "\n";
  return out;
}

}  // namespace pyflame_rt::csl
