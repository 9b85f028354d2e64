#include "devices/cpu/native_loop.h"

#include <map>
#include <set>

#include "devices/cpu/native_if.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"
#include "graph/dtype.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Where a value the loop needs comes from: one of the piece's inputs, a constant (an
// initializer of the piece or of the body, a body Constant node), or nowhere (an omitted
// optional input).
struct Source {
  enum Kind { kAbsent, kPieceInput, kConstant } kind = kAbsent;
  size_t index = 0;
  Value constant;
};

// Where a body output comes from at each iteration: an output of the compiled body, one of the
// body graph's inputs passed through (the condition, a loop-carried value, an outer value), or a
// constant.
struct BodyOutput {
  enum Kind { kComputed, kInput, kConstant } kind = kComputed;
  size_t index = 0;
  Value constant;
};

Status read_bool(const Node& node, const Value& v, const char* what, bool* out) {
  if (!v.is_tensor()) return node.error(StatusCode::kInvalidArgument, what, " must be a tensor");
  const Tensor& t = v.tensor;
  if (t.numel() != 1) {
    return node.error(StatusCode::kInvalidArgument, what, " must hold one element, got shape ", dims_to_string(t.dims()));
  }
  if (t.dtype() != DType::kBool && !dtype_is_integer(t.dtype())) {
    return node.error(StatusCode::kInvalidArgument, what, " must be bool, got ", dtype_name(t.dtype()));
  }
  *out = t.value_as_int64(0) != 0;
  return Status::OK();
}

class NativeLoop : public Executable {
 public:
  NativeLoop(const Node& node, const Graph& body, std::vector<Source> node_inputs, std::vector<Source> outer,
             std::unique_ptr<Executable> exe, std::vector<BodyOutput> body_outputs, std::vector<size_t> piece_outputs)
      : node_(node),
        node_inputs_(std::move(node_inputs)),
        outer_(std::move(outer)),
        exe_(std::move(exe)),
        body_outputs_(std::move(body_outputs)),
        piece_outputs_(std::move(piece_outputs)) {
    n_carried_ = node_inputs_.size() > 2 ? node_inputs_.size() - 2 : 0;
    n_scan_ = body_outputs_.size() - 1 - n_carried_;
    // A scan output's element type and dims when the loop runs no iteration.
    for (size_t k = 0; k < n_scan_; ++k) {
      const ValueInfo& v = body.outputs[1 + n_carried_ + k];
      DType dt = v.dtype == DType::kUndefined ? DType::kFloat32 : v.dtype;
      Dims dims;
      if (v.shape.rank_known) {
        for (const Dim& d : v.shape.dims) dims.push_back(d.known() ? d.value : 0);
      }
      empty_scans_.push_back({dt, dims});
    }
  }

  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override { return run(std::move(inputs), RunContext()); }

  Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const override {
    return run_loop(std::move(inputs), ctx, [&](const Executable& e, std::vector<Value> in) { return e.run(std::move(in), ctx); });
  }

  Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const override {
    return run_loop(std::move(inputs), RunContext(),
                    [&](const Executable& e, std::vector<Value> in) { return e.run_profiled(std::move(in), timings); });
  }

  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out = {{node_.name, node_.op_type, "cpu", "native"}};
    if (exe_) {
      std::vector<NodeKernel> k = exe_->node_kernels();
      out.insert(out.end(), k.begin(), k.end());
    }
    return out;
  }

  std::vector<std::string> fallback_nodes() const override { return exe_ ? exe_->fallback_nodes() : std::vector<std::string>{}; }

  Status export_packed(PackedWeights* out) const override { return exe_ ? exe_->export_packed(out) : Status::OK(); }

 private:
  const Value* value_of(const Source& s, const std::vector<Value>& inputs) const {
    if (s.kind == Source::kPieceInput) return &inputs[s.index];
    if (s.kind == Source::kConstant) return &s.constant;
    return nullptr;
  }

  template <typename RunOne>
  Expected<std::vector<Value>> run_loop(std::vector<Value> inputs, const RunContext& ctx, RunOne run_one) const {
    int64_t max_trips = -1;  // -1: unbounded (only the condition ends the loop)
    if (const Value* m = value_of(node_inputs_[0], inputs); m && !m->is_none()) {
      if (!m->is_tensor() || m->tensor.numel() != 1 || !dtype_is_integer(m->tensor.dtype())) {
        return node_.error(StatusCode::kInvalidArgument, "trip count M must be an integer scalar, got ",
                           m->is_tensor() ? m->tensor.summary() : std::string("a non-tensor"));
      }
      max_trips = m->tensor.value_as_int64(0);
    }
    bool cond = true;
    if (const Value* c = value_of(node_inputs_[1], inputs); c && !c->is_none()) {
      RETURN_IF_ERROR(read_bool(node_, *c, "condition (input 1)", &cond));
    }
    // The body graph's inputs: iteration, condition, loop-carried values, outer values.
    std::vector<Value> body_in(2 + n_carried_ + outer_.size());
    for (size_t i = 0; i < n_carried_; ++i) {
      const Value* v = value_of(node_inputs_[2 + i], inputs);
      body_in[2 + i] = v ? *v : Value();
    }
    for (size_t j = 0; j < outer_.size(); ++j) body_in[2 + n_carried_ + j] = *value_of(outer_[j], inputs);
    std::vector<std::vector<Tensor>> scans(n_scan_);
    for (int64_t iter = 0; (max_trips < 0 || iter < max_trips) && cond; ++iter) {
      // Before every iteration, as the reference Loop: a long loop stops at the deadline or
      // when terminated, even if its body has no nodes that would check.
      RETURN_IF_ERROR(ctx.check());
      RETURN_IF_ERROR(check_run_interrupt());
      body_in[0] = Value(Tensor::scalar<int64_t>(iter));
      body_in[1] = Value(Tensor::scalar<bool>(cond));
      std::vector<Value> computed;
      if (exe_) {
        ASSIGN_OR_RETURN(computed, run_one(*exe_, body_in));
      }
      std::vector<Value> outs;
      outs.reserve(body_outputs_.size());
      for (const BodyOutput& o : body_outputs_) {
        // A copy, not a move: two body outputs may be one value (a scan output that is an
        // Identity of a loop-carried one). Tensors share their buffers.
        if (o.kind == BodyOutput::kComputed) outs.push_back(computed.at(o.index));
        else if (o.kind == BodyOutput::kInput) outs.push_back(body_in[o.index]);
        else outs.push_back(o.constant);
      }
      RETURN_IF_ERROR(read_bool(node_, outs[0], "body condition output", &cond));
      for (size_t i = 0; i < n_carried_; ++i) body_in[2 + i] = std::move(outs[1 + i]);
      for (size_t k = 0; k < n_scan_; ++k) {
        Value& s = outs[1 + n_carried_ + k];
        if (!s.is_tensor()) return node_.error(StatusCode::kNotImplemented, "scan output ", k, " is not a tensor");
        if (!scans[k].empty() && scans[k].front().dims() != s.tensor.dims()) {
          return node_.error(StatusCode::kInvalidArgument, "scan output ", k, " changes shape from ",
                             dims_to_string(scans[k].front().dims()), " to ", dims_to_string(s.tensor.dims()),
                             " at iteration ", iter);
        }
        scans[k].push_back(std::move(s.tensor));
      }
    }
    std::vector<Value> result;
    for (size_t k : piece_outputs_) {
      if (k < n_carried_) {
        result.push_back(body_in[2 + k]);
        continue;
      }
      const size_t s = k - n_carried_;
      Dims elem = empty_scans_[s].second;
      DType dt = empty_scans_[s].first;
      if (!scans[s].empty()) {
        elem = scans[s].front().dims();
        dt = scans[s].front().dtype();
      }
      result.emplace_back(stack_along(scans[s], 0, elem, dt));
    }
    return result;
  }

  Node node_;
  std::vector<Source> node_inputs_;  // per Loop input (M, cond, initial values), padded to 2
  std::vector<Source> outer_;        // per outer value the body graph takes after its own inputs
  std::unique_ptr<Executable> exe_;  // null: the body has no nodes left
  std::vector<BodyOutput> body_outputs_;
  std::vector<size_t> piece_outputs_;  // per piece output: the Loop output it is
  size_t n_carried_ = 0, n_scan_ = 0;
  std::vector<std::pair<DType, Dims>> empty_scans_;
};

}  // namespace

Expected<std::unique_ptr<Executable>> compile_native_loop(const Graph& piece, const PieceCompiler& compile_body) {
  if (piece.nodes.size() != 1 || piece.nodes[0].op_type != "Loop" || !piece.nodes[0].domain.empty()) {
    return not_implemented("not a lone Loop node");
  }
  const Node& node = piece.nodes[0];
  const Graph* body = node.attr_graph("body");
  if (!body) return node.error(StatusCode::kInvalidGraph, "missing body attribute");
  std::map<std::string, size_t> piece_input;
  for (size_t i = 0; i < piece.inputs.size(); ++i) piece_input[piece.inputs[i].name] = i;
  auto source_of = [&](const std::string& name, Source* s) -> Status {
    if (name.empty()) return Status::OK();
    if (auto p = piece_input.find(name); p != piece_input.end()) {
      s->kind = Source::kPieceInput;
      s->index = p->second;
    } else if (auto w = piece.initializers.find(name); w != piece.initializers.end()) {
      s->kind = Source::kConstant;
      s->constant = Value(w->second);
    } else {
      return not_implemented("the Loop reads '", name, "', which is neither an input nor a constant of its piece");
    }
    return Status::OK();
  };

  std::vector<Source> node_inputs(std::max<size_t>(2, node.inputs.size()));
  for (size_t i = 0; i < node.inputs.size(); ++i) RETURN_IF_ERROR(source_of(node.inputs[i], &node_inputs[i]));
  const size_t n_carried = node.inputs.size() > 2 ? node.inputs.size() - 2 : 0;
  if (body->inputs.size() != n_carried + 2) {
    return node.error(StatusCode::kInvalidGraph, "body takes ", body->inputs.size(), " inputs, expected ", n_carried + 2,
                      " (iteration, condition and ", n_carried, " loop-carried values)");
  }
  if (body->outputs.size() < n_carried + 1 || node.outputs.size() != body->outputs.size() - 1) {
    return node.error(StatusCode::kInvalidGraph, "body returns ", body->outputs.size(), " outputs, the node has ",
                      node.outputs.size(), " and ", n_carried, " loop-carried values");
  }
  std::vector<size_t> piece_outputs;
  for (const ValueInfo& o : piece.outputs) {
    size_t k = 0;
    while (k < node.outputs.size() && node.outputs[k] != o.name) ++k;
    if (k == node.outputs.size()) return not_implemented("piece output '", o.name, "' is not an output of the Loop");
    piece_outputs.push_back(k);
  }

  // The body as a graph: its Constant nodes initializers, its Identity nodes aliases.
  Graph g;
  g.name = piece.name + "/body";
  g.opset_imports = piece.opset_imports;
  for (const auto& kv : body->opset_imports) g.opset_imports.insert(kv);
  g.initializers = body->initializers;
  g.value_info = body->value_info;
  g.inputs = body->inputs;
  std::set<std::string> body_inputs;
  for (const ValueInfo& i : body->inputs) body_inputs.insert(i.name);
  std::set<std::string> produced;
  std::map<std::string, std::string> alias;
  auto resolve = [&](const std::string& name) {
    auto a = alias.find(name);
    return a == alias.end() ? name : a->second;
  };
  for (const Node& n : body->nodes) {
    Tensor t;
    if (n.op_type == "Constant" && n.domain.empty() && n.outputs.size() == 1 && constant_node_value(n, &t)) {
      g.initializers[n.outputs[0]] = std::move(t);
      continue;
    }
    if (n.op_type == "Identity" && n.domain.empty() && n.inputs.size() == 1 && n.outputs.size() == 1 &&
        !n.inputs[0].empty()) {
      alias[n.outputs[0]] = resolve(n.inputs[0]);
      continue;
    }
    Node copy = n;
    for (auto& in : copy.inputs) in = resolve(in);
    g.nodes.push_back(std::move(copy));
    for (const auto& o : n.outputs) if (!o.empty()) produced.insert(o);
  }
  // Outer-scope values: inputs of the body graph after its own, passed by the piece.
  std::vector<Source> outer;
  std::map<std::string, size_t> outer_index;  // name -> index among g.inputs
  auto need = [&](const std::string& name) -> Status {
    if (name.empty() || produced.count(name) || g.initializers.count(name) || body_inputs.count(name) ||
        outer_index.count(name)) {
      return Status::OK();
    }
    if (auto w = piece.initializers.find(name); w != piece.initializers.end()) {
      g.initializers[name] = w->second;
      return Status::OK();
    }
    auto from = piece_input.find(name);
    if (from == piece_input.end()) return invalid_graph("Loop body reads '", name, "', which the Loop's scope does not define");
    outer_index[name] = g.inputs.size();
    g.inputs.push_back(piece.inputs[from->second]);
    Source s;
    s.kind = Source::kPieceInput;
    s.index = from->second;
    outer.push_back(s);
    return Status::OK();
  };
  for (const Node& n : g.nodes) {
    for (const auto& in : n.inputs) RETURN_IF_ERROR(need(in));
    std::set<std::string> nested;
    for (const auto& kv : n.attributes) {
      if (kv.second.g) outer_scope_reads(*kv.second.g, &nested);
      for (const auto& sub : kv.second.graphs) if (sub) outer_scope_reads(*sub, &nested);
    }
    for (const auto& name : nested) {
      if (alias.count(name)) return not_implemented("a subgraph nested in the Loop body reads '", name, "', an Identity's output");
      RETURN_IF_ERROR(need(name));
    }
  }
  std::vector<BodyOutput> body_outputs;
  std::map<std::string, size_t> computed_index;
  for (const ValueInfo& declared : body->outputs) {
    const std::string name = resolve(declared.name);
    BodyOutput src;
    if (produced.count(name)) {
      auto c = computed_index.find(name);
      if (c == computed_index.end()) {
        ValueInfo out = declared;
        out.name = name;
        c = computed_index.emplace(name, g.outputs.size()).first;
        g.outputs.push_back(out);
      }
      src.index = c->second;
    } else if (auto w = g.initializers.find(name); w != g.initializers.end()) {
      src.kind = BodyOutput::kConstant;
      src.constant = Value(w->second);
    } else if (auto pw = piece.initializers.find(name); pw != piece.initializers.end()) {
      src.kind = BodyOutput::kConstant;
      src.constant = Value(pw->second);
    } else if (body_inputs.count(name)) {
      src.kind = BodyOutput::kInput;
      for (size_t i = 0; i < body->inputs.size(); ++i) if (body->inputs[i].name == name) src.index = i;
    } else {
      RETURN_IF_ERROR(need(name));
      auto o = outer_index.find(name);
      if (o == outer_index.end()) return invalid_graph("Loop body output '", name, "' is defined nowhere");
      src.kind = BodyOutput::kInput;
      src.index = o->second;
    }
    body_outputs.push_back(std::move(src));
  }
  std::unique_ptr<Executable> exe;
  if (!g.nodes.empty()) {
    ASSIGN_OR_RETURN(exe, compile_body(g));
  }
  return std::unique_ptr<Executable>(new NativeLoop(node, *body, std::move(node_inputs), std::move(outer), std::move(exe),
                                                    std::move(body_outputs), std::move(piece_outputs)));
}

}  // namespace cpu
}  // namespace pyflame_rt
