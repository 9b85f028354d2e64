#include "devices/ref/ref_program.h"

#include <algorithm>
#include <new>
#include <stdexcept>

#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

// Every name a graph defines itself (inputs, initializers, node outputs).
std::set<std::string> local_names(const Graph& g) {
  std::set<std::string> names;
  for (const auto& v : g.inputs) names.insert(v.name);
  for (const auto& kv : g.initializers) names.insert(kv.first);
  for (const auto& n : g.nodes) for (const auto& o : n.outputs) if (!o.empty()) names.insert(o);
  return names;
}

}  // namespace

// A running graph's values; subgraph frames look names up in their parent.
class RefProgram::Frame : public SubgraphRunner {
 public:
  Frame(const RefProgram& program, const Frame* parent)
      : program_(program), parent_(parent), slots_(program.slot_names_.size()) {}

  const Value* lookup(const std::string& name) const {
    auto it = program_.slot_of_.find(name);
    if (it != program_.slot_of_.end() && !slots_[static_cast<size_t>(it->second)].is_none()) {
      return &slots_[static_cast<size_t>(it->second)];
    }
    return parent_ ? parent_->lookup(name) : nullptr;
  }

  Expected<std::vector<Value>> run_subgraph(const Graph& body,
                                            const std::vector<Value>& inputs) override {
    auto it = program_.subprograms_.find(&body);
    if (it == program_.subprograms_.end()) {
      return runtime_error("subgraph '", body.name, "' was not prepared with its parent graph");
    }
    return it->second->run_in_scope(inputs, this);
  }

  const RefProgram& program_;
  const Frame* parent_;
  std::vector<Value> slots_;
};

Expected<std::shared_ptr<RefProgram>> RefProgram::build(const Graph& graph,
                                                        const KernelRegistry& registry,
                                                        const std::set<std::string>& outer_scope) {
  auto program = std::shared_ptr<RefProgram>(new RefProgram());
  RefProgram& p = *program;
  p.graph_ = graph;
  RETURN_IF_ERROR(p.graph_.sort_topologically(outer_scope));
  RETURN_IF_ERROR(p.graph_.validate(outer_scope));
  const Graph& g = p.graph_;

  auto slot = [&](const std::string& name) {
    auto [it, inserted] = p.slot_of_.emplace(name, static_cast<int>(p.slot_names_.size()));
    if (inserted) p.slot_names_.push_back(name);
    return it->second;
  };
  for (const auto& v : g.inputs) p.input_slots_.push_back(slot(v.name));
  for (const auto& kv : g.initializers) {
    if (!g.find_input(kv.first)) p.constant_slots_.emplace_back(slot(kv.first), kv.second);
  }
  std::set<std::string> locals = local_names(g);
  std::set<std::string> visible = outer_scope;
  visible.insert(locals.begin(), locals.end());

  for (const auto& node : g.nodes) {
    Step step;
    step.node = &node;
    step.opset = g.opset(node.domain);
    step.kernel = registry.find(node.domain, node.op_type, step.opset);
    if (!step.kernel) {
      return not_implemented("op '", node.op_type, "' (domain '",
                             node.domain.empty() ? "ai.onnx" : node.domain, "', opset ", step.opset,
                             ") used by node '", node.name, "' is not supported");
    }
    for (const auto& in : node.inputs) {
      if (in.empty()) { step.inputs.push_back(-1); continue; }
      int s = slot(in);
      if (!locals.count(in)) {
        if (std::none_of(p.outer_slots_.begin(), p.outer_slots_.end(),
                         [&](const auto& o) { return o.first == s; })) {
          p.outer_slots_.emplace_back(s, in);
        }
      }
      step.inputs.push_back(s);
    }
    for (const auto& out : node.outputs) step.outputs.push_back(out.empty() ? -1 : slot(out));
    for (const auto& kv : node.attributes) {
      std::vector<const Graph*> subs;
      if (kv.second.g) subs.push_back(kv.second.g.get());
      for (const auto& sg : kv.second.graphs) subs.push_back(sg.get());
      for (const Graph* sub : subs) {
        // A subgraph's nodes use the model's opset imports (ONNX); a subgraph made in code
        // without its own ran TopK in an If branch as TopK-1 (its k an attribute, default 1).
        Graph inheriting;
        const Graph* body = sub;
        for (const auto& [domain, version] : g.opset_imports) {
          if (body->opset_imports.count(domain)) continue;
          if (body == sub) body = &(inheriting = *sub);
          inheriting.opset_imports.emplace(domain, version);
        }
        ASSIGN_OR_RETURN(auto sp, build(*body, registry, visible));
        p.subprograms_[sub] = sp;
        // Names the body reads from this scope are uses by this step (kept alive until it
        // runs); names from further out become this graph's outer reads too.
        for (const auto& o : sp->outer_slots_) {
          int s = slot(o.second);
          step.implicit_inputs.push_back(s);
          if (!locals.count(o.second) &&
              std::none_of(p.outer_slots_.begin(), p.outer_slots_.end(),
                           [&](const auto& x) { return x.first == s; })) {
            p.outer_slots_.emplace_back(s, o.second);
          }
        }
      }
    }
    p.steps_.push_back(std::move(step));
  }
  for (const auto& o : g.outputs) {
    int s = slot(o.name);
    p.output_slots_.push_back(s);
    if (!locals.count(o.name) &&
        std::none_of(p.outer_slots_.begin(), p.outer_slots_.end(),
                     [&](const auto& x) { return x.first == s; })) {
      p.outer_slots_.emplace_back(s, o.name);
    }
  }

  // Free each intermediate after its last reader (graph outputs are kept).
  std::vector<int> last_use(p.slot_names_.size(), -1);
  for (size_t i = 0; i < p.steps_.size(); ++i) {
    for (int s : p.steps_[i].inputs) if (s >= 0) last_use[static_cast<size_t>(s)] = static_cast<int>(i);
    for (int s : p.steps_[i].implicit_inputs) last_use[static_cast<size_t>(s)] = static_cast<int>(i);
  }
  for (int s : p.output_slots_) last_use[static_cast<size_t>(s)] = -2;
  for (size_t s = 0; s < last_use.size(); ++s) {
    if (last_use[s] >= 0) p.steps_[static_cast<size_t>(last_use[s])].release.push_back(static_cast<int>(s));
  }
  return program;
}

Expected<std::vector<Value>> RefProgram::run(std::vector<Value> inputs) const {
  return run_in_scope(std::move(inputs), nullptr);
}

Expected<std::vector<Value>> RefProgram::run_in_scope(std::vector<Value> inputs,
                                                      const Frame* parent) const {
  if (inputs.size() != input_slots_.size()) {
    return invalid_argument("graph '", graph_.name, "' expects ", input_slots_.size(),
                            " inputs, got ", inputs.size());
  }
  Frame frame(*this, parent);
  for (size_t i = 0; i < inputs.size(); ++i) {
    frame.slots_[static_cast<size_t>(input_slots_[i])] = std::move(inputs[i]);
  }
  for (const auto& c : constant_slots_) frame.slots_[static_cast<size_t>(c.first)] = Value(c.second);
  for (const auto& o : outer_slots_) {
    if (!frame.slots_[static_cast<size_t>(o.first)].is_none()) continue;
    const Value* v = parent ? parent->lookup(o.second) : nullptr;
    if (v) frame.slots_[static_cast<size_t>(o.first)] = *v;
  }

  std::vector<const Value*> in_ptrs;
  for (const Step& step : steps_) {
    RETURN_IF_ERROR(check_run_interrupt());
    in_ptrs.clear();
    for (int s : step.inputs) {
      const Value* v = s >= 0 ? &frame.slots_[static_cast<size_t>(s)] : nullptr;
      // An omitted optional input and an empty optional value both read as "absent".
      in_ptrs.push_back(v && !v->is_none() ? v : nullptr);
    }
    std::vector<Value> outs(step.outputs.size());
    KernelContext ctx(*step.node, step.opset, in_ptrs, &outs, &frame);
    Status st;
    try {
      st = step.kernel(ctx);
    } catch (const std::bad_alloc&) {
      // Kernels do not throw, but an allocation sized by the input (ConstantOfShape, Expand,
      // Tile...) can exceed memory: fail this run, keep the process.
      return step.node->error(StatusCode::kResourceExhausted, "out of memory while computing its outputs");
    } catch (const std::length_error&) {
      // A buffer sized by a value past what a std::vector can hold: as above, not a crash.
      return step.node->error(StatusCode::kResourceExhausted, "a buffer for its outputs is too large to allocate");
    }
    if (!st.ok()) return st;
    for (size_t i = 0; i < outs.size(); ++i) {
      int s = step.outputs[i];
      if (s >= 0) frame.slots_[static_cast<size_t>(s)] = std::move(outs[i]);
    }
    for (int s : step.release) frame.slots_[static_cast<size_t>(s)] = Value();
  }
  std::vector<Value> results;
  results.reserve(output_slots_.size());
  for (int s : output_slots_) results.push_back(frame.slots_[static_cast<size_t>(s)]);
  return results;
}

}  // namespace pyflame_rt
