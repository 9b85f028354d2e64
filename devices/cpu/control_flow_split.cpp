#include "devices/cpu/control_flow_split.h"

#include "devices/cpu/native_if.h"
#include "devices/cpu/native_loop.h"

#include <map>
#include <set>

namespace pyflame_rt {
namespace cpu {

namespace {

std::vector<const Graph*> subgraphs_of(const Node& n) {
  std::vector<const Graph*> out;
  for (const auto& kv : n.attributes) {
    if (kv.second.g) out.push_back(kv.second.g.get());
    for (const auto& g : kv.second.graphs) if (g) out.push_back(g.get());
  }
  return out;
}

void free_names(const Graph& g, std::set<std::string>* out) {
  std::set<std::string> defined;
  for (const auto& i : g.inputs) defined.insert(i.name);
  for (const auto& kv : g.initializers) defined.insert(kv.first);
  for (const auto& n : g.nodes) for (const auto& o : n.outputs) defined.insert(o);
  std::set<std::string> reads;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) if (!in.empty()) reads.insert(in);
    for (const Graph* sub : subgraphs_of(n)) free_names(*sub, &reads);
  }
  for (const auto& o : g.outputs) reads.insert(o.name);
  for (const auto& r : reads) if (!defined.count(r)) out->insert(r);
}

// What node n reads at run time: its inputs and its subgraphs' outer-scope names.
std::set<std::string> reads_of(const Node& n) {
  std::set<std::string> r;
  for (const auto& in : n.inputs) if (!in.empty()) r.insert(in);
  for (const Graph* sub : subgraphs_of(n)) free_names(*sub, &r);
  return r;
}

struct Piece {
  Graph graph;
  std::unique_ptr<Executable> exe;
};

class SplitExecutable : public Executable {
 public:
  SplitExecutable(const Graph& graph, std::vector<Piece> pieces) : pieces_(std::move(pieces)) {
    for (const auto& i : graph.inputs) input_names_.push_back(i.name);
    for (const auto& o : graph.outputs) output_names_.push_back(o.name);
    for (const auto& o : graph.outputs) {
      if (auto w = graph.initializers.find(o.name); w != graph.initializers.end()) constant_outputs_[o.name] = Value(w->second);
    }
  }

  Expected<std::vector<Value>> run(std::vector<Value> inputs) const override { return run(std::move(inputs), RunContext()); }

  Expected<std::vector<Value>> run(std::vector<Value> inputs, const RunContext& ctx) const override {
    return run_pieces(std::move(inputs), [&](const Executable& e, std::vector<Value> in) { return e.run(std::move(in), ctx); });
  }

  Expected<std::vector<Value>> run_profiled(std::vector<Value> inputs, std::vector<NodeTiming>* timings) const override {
    return run_pieces(std::move(inputs),
                      [&](const Executable& e, std::vector<Value> in) { return e.run_profiled(std::move(in), timings); });
  }

  std::vector<NodeKernel> node_kernels() const override {
    std::vector<NodeKernel> out;
    for (const Piece& p : pieces_) {
      std::vector<NodeKernel> k = p.exe->node_kernels();
      out.insert(out.end(), k.begin(), k.end());
    }
    return out;
  }

  std::vector<std::string> fallback_nodes() const override {
    std::vector<std::string> out;
    for (const Piece& p : pieces_) {
      std::vector<std::string> f = p.exe->fallback_nodes();
      out.insert(out.end(), f.begin(), f.end());
    }
    return out;
  }

  Status export_packed(PackedWeights* out) const override {
    for (const Piece& p : pieces_) RETURN_IF_ERROR(p.exe->export_packed(out));
    return Status::OK();
  }

 private:
  template <typename RunOne>
  Expected<std::vector<Value>> run_pieces(std::vector<Value> inputs, RunOne run_one) const {
    if (inputs.size() != input_names_.size()) {
      return invalid_argument("expected ", input_names_.size(), " inputs, received ", inputs.size());
    }
    std::map<std::string, Value> env = constant_outputs_;
    for (size_t i = 0; i < inputs.size(); ++i) env[input_names_[i]] = std::move(inputs[i]);
    for (const Piece& p : pieces_) {
      std::vector<Value> in;
      for (const auto& vi : p.graph.inputs) {
        auto it = env.find(vi.name);
        if (it == env.end()) return runtime_error("control-flow split: value '", vi.name, "' is not computed yet");
        in.push_back(it->second);
      }
      ASSIGN_OR_RETURN(std::vector<Value> out, run_one(*p.exe, std::move(in)));
      for (size_t k = 0; k < out.size() && k < p.graph.outputs.size(); ++k) env[p.graph.outputs[k].name] = std::move(out[k]);
    }
    std::vector<Value> result;
    for (const auto& name : output_names_) {
      auto it = env.find(name);
      if (it == env.end()) return runtime_error("control-flow split: graph output '", name, "' was not computed");
      result.push_back(it->second);
    }
    return result;
  }

  std::vector<Piece> pieces_;
  std::vector<std::string> input_names_, output_names_;
  std::map<std::string, Value> constant_outputs_;
};

}  // namespace

void outer_scope_reads(const Graph& subgraph, std::set<std::string>* out) { free_names(subgraph, out); }

Expected<std::unique_ptr<Executable>> compile_around_control_flow(const Graph& graph, const PieceCompiler& native,
                                                                  const PieceCompiler& reference) {
  RETURN_IF_ERROR(graph.check_sorted());
  const size_t n = graph.nodes.size();
  std::vector<bool> control(n, false);
  std::vector<size_t> bounds = {0};
  for (size_t i = 0; i < n; ++i) {
    control[i] = !subgraphs_of(graph.nodes[i]).empty();
    if (!control[i]) continue;
    if (i > bounds.back()) bounds.push_back(i);
    bounds.push_back(i + 1);
  }
  if (n > bounds.back()) bounds.push_back(n);
  std::vector<std::set<std::string>> reads(n);
  for (size_t i = 0; i < n; ++i) reads[i] = reads_of(graph.nodes[i]);
  std::set<std::string> graph_outputs;
  for (const auto& o : graph.outputs) graph_outputs.insert(o.name);

  std::vector<Piece> pieces;
  for (size_t p = 0; p + 1 < bounds.size(); ++p) {
    const size_t begin = bounds[p], end = bounds[p + 1];
    Piece piece;
    Graph& g = piece.graph;
    g.name = graph.name + "/piece" + std::to_string(p);
    g.opset_imports = graph.opset_imports;
    std::set<std::string> produced, inputs_seen;
    bool has_control = false;
    for (size_t i = begin; i < end; ++i) {
      const Node& node = graph.nodes[i];
      has_control = has_control || control[i];
      g.nodes.push_back(node);
      for (const auto& in : reads[i]) {
        if (produced.count(in)) continue;
        if (auto w = graph.initializers.find(in); w != graph.initializers.end()) {
          g.initializers[in] = w->second;  // shares the weight buffer
        } else if (inputs_seen.insert(in).second) {
          const ValueInfo* info = graph.find_value_info(in);
          if (!info) info = graph.find_input(in);
          g.inputs.push_back(info ? *info : ValueInfo{in, DType::kUndefined, Shape::unknown_rank()});
        }
      }
      for (const auto& o : node.outputs) if (!o.empty()) produced.insert(o);
    }
    // Outputs: what later pieces read, and graph outputs.
    std::set<std::string> needed = graph_outputs;
    for (size_t i = end; i < n; ++i) needed.insert(reads[i].begin(), reads[i].end());
    for (const auto& name : produced) {
      if (!needed.count(name)) continue;
      const ValueInfo* info = graph.find_value_info(name);
      if (!info) info = graph.find_output(name);
      g.outputs.push_back(info ? *info : ValueInfo{name, DType::kUndefined, Shape::unknown_rank()});
    }
    for (const auto& [name, info] : graph.value_info) {
      if (produced.count(name)) g.value_info[name] = info;
    }
    if (has_control) {
      // An If's branches and a Loop's body compiled like any graph; the interpreter for Scan
      // and for an If or Loop whose subgraphs do not compile natively.
      auto compiled = g.nodes.size() == 1 && g.nodes[0].op_type == "Loop" ? compile_native_loop(g, native)
                                                                           : compile_native_if(g, native);
      if (compiled.ok()) {
        piece.exe = std::move(*compiled);
      } else {
        ASSIGN_OR_RETURN(piece.exe, reference(g));
      }
    } else {
      ASSIGN_OR_RETURN(piece.exe, native(g));
    }
    pieces.push_back(std::move(piece));
  }
  return std::unique_ptr<Executable>(new SplitExecutable(graph, std::move(pieces)));
}

}  // namespace cpu
}  // namespace pyflame_rt
