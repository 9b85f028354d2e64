#include "devices/cpu/native_if.h"

#include <map>
#include <set>

#include "graph/dtype.h"

namespace pyflame_rt {
namespace cpu {

bool constant_node_value(const Node& n, Tensor* out) {
  if (const Tensor* t = n.attr_tensor("value")) {
    *out = *t;
  } else if (const Attribute* a = n.attr("value_float")) {
    *out = Tensor::scalar<float>(a->f);
  } else if (const Attribute* a = n.attr("value_int")) {
    *out = Tensor::scalar<int64_t>(a->i);
  } else if (const Attribute* a = n.attr("value_floats")) {
    *out = Tensor::from_vector<float>({static_cast<int64_t>(a->floats.size())}, a->floats);
  } else if (const Attribute* a = n.attr("value_ints")) {
    *out = Tensor::from_vector<int64_t>({static_cast<int64_t>(a->ints.size())}, a->ints);
  } else {
    return false;
  }
  return true;
}

namespace {

// Where a branch output comes from: a node of the compiled branch (its output k), one of the
// piece's inputs passed through, or a constant.
struct OutputSource {
  enum Kind { kComputed, kPassThrough, kConstant } kind = kComputed;
  size_t index = 0;
  Value constant;
};

struct Branch {
  std::unique_ptr<Executable> exe;
  std::vector<size_t> inputs;         // per branch-graph input: its index among the piece's inputs
  std::vector<OutputSource> outputs;  // per If output
};

Expected<Branch> compile_branch_graph(const Graph& piece, const Graph& body, const std::string& label,
                                      const PieceCompiler& compile) {
  std::map<std::string, size_t> piece_input;
  for (size_t i = 0; i < piece.inputs.size(); ++i) piece_input[piece.inputs[i].name] = i;
  Graph g;
  g.name = piece.name + "/" + label;
  g.opset_imports = piece.opset_imports;
  for (const auto& kv : body.opset_imports) g.opset_imports.insert(kv);
  g.initializers = body.initializers;
  g.value_info = body.value_info;
  std::set<std::string> produced;
  // Identity nodes vanish: their output is another name for their input (torchvision's
  // "else: Identity" branches, which would otherwise run a reference copy).
  std::map<std::string, std::string> alias;
  auto resolve = [&](const std::string& name) {
    auto a = alias.find(name);
    return a == alias.end() ? name : a->second;
  };
  for (const Node& n : body.nodes) {
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
  Branch branch;
  std::set<std::string> seen;
  auto need = [&](const std::string& name) -> Status {
    if (name.empty() || produced.count(name) || g.initializers.count(name) || seen.count(name)) return Status::OK();
    if (auto w = piece.initializers.find(name); w != piece.initializers.end()) {
      g.initializers[name] = w->second;
      return Status::OK();
    }
    auto from = piece_input.find(name);
    if (from == piece_input.end()) return invalid_graph(label, " reads '", name, "', which the If's scope does not define");
    seen.insert(name);
    g.inputs.push_back(piece.inputs[from->second]);
    branch.inputs.push_back(from->second);
    return Status::OK();
  };
  for (const Node& n : g.nodes) {
    for (const auto& in : n.inputs) RETURN_IF_ERROR(need(in));
    // A nested If/Loop/Scan reads outer names too; the branch compiler splits it out again.
    std::set<std::string> nested;
    for (const auto& kv : n.attributes) {
      if (kv.second.g) outer_scope_reads(*kv.second.g, &nested);
      for (const auto& sub : kv.second.graphs) if (sub) outer_scope_reads(*sub, &nested);
    }
    for (const auto& name : nested) {
      if (alias.count(name)) return not_implemented(label, ": a nested subgraph reads '", name, "', an Identity's output");
      RETURN_IF_ERROR(need(name));
    }
  }
  for (const ValueInfo& declared : body.outputs) {
    ValueInfo out = declared;
    out.name = resolve(declared.name);
    OutputSource src;
    if (produced.count(out.name)) {
      src.index = g.outputs.size();
      g.outputs.push_back(out);
    } else if (auto w = g.initializers.find(out.name); w != g.initializers.end()) {
      src.kind = OutputSource::kConstant;
      src.constant = Value(w->second);
    } else if (auto pw = piece.initializers.find(out.name); pw != piece.initializers.end()) {
      src.kind = OutputSource::kConstant;
      src.constant = Value(pw->second);
    } else if (auto p = piece_input.find(out.name); p != piece_input.end()) {
      src.kind = OutputSource::kPassThrough;
      src.index = p->second;
    } else {
      return invalid_graph(label, " output '", out.name, "' is defined nowhere");
    }
    branch.outputs.push_back(std::move(src));
  }
  if (!g.nodes.empty()) {
    ASSIGN_OR_RETURN(branch.exe, compile(g));
  }
  return branch;
}

class NativeIf : public Executable {
 public:
  NativeIf(const Node& node, size_t cond, std::vector<size_t> piece_outputs, Branch then_branch, Branch else_branch)
      : node_(node), cond_(cond), piece_outputs_(std::move(piece_outputs)) {
    branches_[0] = std::move(else_branch);
    branches_[1] = std::move(then_branch);
  }

  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override { return run(std::move(inputs), RunContext()); }

  Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const override {
    return run_branch(std::move(inputs), [&](const Executable& e, std::vector<Value> in) { return e.run(std::move(in), ctx); });
  }

  Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const override {
    return run_branch(std::move(inputs),
                      [&](const Executable& e, std::vector<Value> in) { return e.run_profiled(std::move(in), timings); });
  }

  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out = {{node_.name, node_.op_type, "cpu", "native"}};
    for (const Branch& b : branches_) {
      if (!b.exe) continue;
      std::vector<NodeKernel> k = b.exe->node_kernels();
      out.insert(out.end(), k.begin(), k.end());
    }
    return out;
  }

  Status export_packed(PackedWeights* out) const override {
    for (const Branch& b : branches_) {
      if (b.exe) RETURN_IF_ERROR(b.exe->export_packed(out));
    }
    return Status::OK();
  }

  std::vector<std::string> fallback_nodes() const override {
    std::vector<std::string> out;
    for (const Branch& b : branches_) {
      if (!b.exe) continue;
      std::vector<std::string> f = b.exe->fallback_nodes();
      out.insert(out.end(), f.begin(), f.end());
    }
    return out;
  }

 private:
  template <typename RunOne>
  Expected<std::vector<Value>> run_branch(std::vector<Value> inputs, RunOne run_one) const {
    if (inputs.size() <= cond_ || !inputs[cond_].is_tensor()) {
      return node_.error(StatusCode::kInvalidArgument, "condition (input 0) must be a tensor");
    }
    const Tensor& c = inputs[cond_].tensor;
    if (c.numel() != 1) {
      return node_.error(StatusCode::kInvalidArgument, "condition (input 0) must hold one element, got shape ",
                         dims_to_string(c.dims()));
    }
    if (c.dtype() != DType::kBool && !dtype_is_integer(c.dtype())) {
      return node_.error(StatusCode::kInvalidArgument, "condition (input 0) must be bool, got ", dtype_name(c.dtype()));
    }
    const Branch& b = branches_[c.value_as_int64(0) != 0 ? 1 : 0];
    std::vector<Value> computed;
    if (b.exe) {
      std::vector<Value> in;
      for (size_t i : b.inputs) in.push_back(inputs[i]);
      ASSIGN_OR_RETURN(computed, run_one(*b.exe, std::move(in)));
    }
    std::vector<Value> out;
    for (size_t k : piece_outputs_) {
      const OutputSource& s = b.outputs[k];
      if (s.kind == OutputSource::kComputed) {
        out.push_back(computed.at(s.index));
      } else if (s.kind == OutputSource::kPassThrough) {
        out.push_back(inputs[s.index]);
      } else {
        out.push_back(s.constant);
      }
    }
    return out;
  }

  Node node_;
  size_t cond_;                        // the condition's index among the piece's inputs
  std::vector<size_t> piece_outputs_;  // per piece output: the index of the If output it is
  Branch branches_[2];                 // [0] else, [1] then
};

}  // namespace

Expected<std::unique_ptr<Executable>> compile_native_if(const Graph& piece, const PieceCompiler& compile_branch) {
  if (piece.nodes.size() != 1 || piece.nodes[0].op_type != "If" || !piece.nodes[0].domain.empty()) {
    return not_implemented("not a lone If node");
  }
  const Node& node = piece.nodes[0];
  size_t cond = 0;
  while (cond < piece.inputs.size() && (node.inputs.empty() || piece.inputs[cond].name != node.inputs[0])) ++cond;
  if (cond == piece.inputs.size()) return not_implemented("the If's condition is not an input of its piece");
  const Graph* then_g = node.attr_graph("then_branch");
  const Graph* else_g = node.attr_graph("else_branch");
  if (!then_g || !else_g) return node.error(StatusCode::kInvalidGraph, "missing then_branch or else_branch");
  if (then_g->outputs.size() != node.outputs.size() || else_g->outputs.size() != node.outputs.size()) {
    return node.error(StatusCode::kInvalidGraph, "its branches return ", then_g->outputs.size(), " and ",
                      else_g->outputs.size(), " outputs, the node has ", node.outputs.size());
  }
  std::vector<size_t> piece_outputs;
  for (const ValueInfo& o : piece.outputs) {
    size_t k = 0;
    while (k < node.outputs.size() && node.outputs[k] != o.name) ++k;
    if (k == node.outputs.size()) return not_implemented("piece output '", o.name, "' is not an output of the If");
    piece_outputs.push_back(k);
  }
  ASSIGN_OR_RETURN(Branch then_b, compile_branch_graph(piece, *then_g, "then_branch", compile_branch));
  ASSIGN_OR_RETURN(Branch else_b, compile_branch_graph(piece, *else_g, "else_branch", compile_branch));
  return std::unique_ptr<Executable>(new NativeIf(node, cond, std::move(piece_outputs), std::move(then_b), std::move(else_b)));
}

}  // namespace cpu
}  // namespace pyflame_rt
