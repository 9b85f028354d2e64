// The reference kernel interface: one plain function per ONNX op, registered for a (domain,
// op, opset range, dtypes) key and looked up by the node's domain, op, opset and dtype.
//
//   Status relu(KernelContext& ctx) {
//     const Tensor& x = *ctx.input(0);
//     Tensor y(x.dtype(), x.dims());
//     ...
//     ctx.set_output(0, std::move(y));
//     return Status::OK();
//   }
//   registry.add("", "Relu", relu);
//
// Kernels validate their inputs and attributes and return a Status naming the node
// (`ctx.node().error(...)`); they never throw. Reference kernels favour clarity over speed:
// they are the oracle every fast kernel is checked against.
#pragma once

#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/status.h"
#include "graph/value.h"

namespace pyflame_rt {

class KernelContext;
using KernelFn = Status (*)(KernelContext&);

// Runs a subgraph (If/Loop/Scan bodies) with the given inputs, in a scope that can see the
// calling graph's values. Implemented by the executor.
class SubgraphRunner {
 public:
  virtual ~SubgraphRunner() = default;
  virtual Expected<std::vector<Value>> run_subgraph(const Graph& body,
                                                    const std::vector<Value>& inputs) = 0;
};

class KernelContext {
 public:
  KernelContext(const Node& node, int64_t opset, std::vector<const Value*> inputs,
                std::vector<Value>* outputs, SubgraphRunner* runner)
      : node_(node), opset_(opset), inputs_(std::move(inputs)), outputs_(outputs), runner_(runner) {}

  const Node& node() const { return node_; }
  int64_t opset() const { return opset_; }  // opset version of the node's domain

  size_t num_inputs() const { return inputs_.size(); }
  // The tensor at input i, or nullptr when the input is omitted (or not a tensor).
  const Tensor* input(size_t i) const {
    if (i >= inputs_.size() || !inputs_[i] || !inputs_[i]->is_tensor()) return nullptr;
    return &inputs_[i]->tensor;
  }
  bool has_input(size_t i) const { return i < inputs_.size() && inputs_[i] != nullptr; }
  const Value* input_value(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }

  size_t num_outputs() const { return outputs_->size(); }
  // False when the node leaves output i unnamed (an omitted optional output).
  bool output_wanted(size_t i) const {
    return i < node_.outputs.size() && !node_.outputs[i].empty();
  }
  // An output past the node's count (Unique's counts when the node names only Y) is dropped:
  // kernels compute their optional outputs unconditionally, and writing them wrote past the
  // outputs vector (found by the kernel_run fuzzer).
  void set_output(size_t i, Tensor t) {
    if (i < outputs_->size()) (*outputs_)[i] = Value(std::move(t));
  }
  void set_output_value(size_t i, Value v) {
    if (i < outputs_->size()) (*outputs_)[i] = std::move(v);
  }

  Expected<std::vector<Value>> run_subgraph(const Graph& body, const std::vector<Value>& inputs) {
    return runner_->run_subgraph(body, inputs);
  }

  // Common checks with node-named messages.
  Status require_inputs(size_t min_count) const;  // inputs 0..min_count-1 present as tensors
  Status require_input(size_t i) const;            // input i present as a tensor
  template <typename... Args>
  Status error(StatusCode code, Args&&... args) const {
    return node_.error(code, std::forward<Args>(args)...);
  }

 private:
  const Node& node_;
  int64_t opset_;
  std::vector<const Value*> inputs_;
  std::vector<Value>* outputs_;
  SubgraphRunner* runner_;
};

// What one registration covers (ONNX Runtime's versioned, typed kernel registration).
struct KernelDef {
  std::string domain;  // "" (= "ai.onnx") or a custom domain
  std::string op_type;
  int64_t since = 1;   // opset versions [since, until]
  int64_t until = std::numeric_limits<int64_t>::max();
  std::vector<DType> dtypes;  // element types of input 0 it takes; empty = any (it checks)
};

class KernelRegistry {
 public:
  // The process-wide registry with every reference kernel registered.
  static const KernelRegistry& reference();

  void add(KernelDef def, KernelFn fn);
  // Every opset, any dtype.
  void add(const std::string& domain, const std::string& op_type, KernelFn fn);
  // The kernel whose range holds `opset` (0 = any) and whose dtypes hold `dtype`
  // (kUndefined = any); the latest registration wins on overlap. nullptr if none.
  KernelFn find(const std::string& domain, const std::string& op_type, int64_t opset = 0,
                DType dtype = DType::kUndefined) const;
  std::vector<std::string> op_names() const;
  // Every registration's key, in registration order per op (what a device's capabilities list).
  std::vector<KernelDef> defs() const;

 private:
  struct Entry {
    KernelDef def;
    KernelFn fn;
  };
  std::map<std::pair<std::string, std::string>, std::vector<Entry>> kernels_;
};

// "ai.onnx" and "" are the same domain.
std::string canonical_domain(const std::string& domain);

}  // namespace pyflame_rt
