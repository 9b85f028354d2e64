// Graph: nodes in topological order, typed graph inputs/outputs, initializers (weights) and
// the opset versions the model was written against.
//
//   Graph g;
//   g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 4})});
//   Node& n = g.add_node("Relu", {"x"}, {"y"});
//   g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 4})});
//   RETURN_IF_ERROR(g.sort_topologically());   // also rejects cycles and dangling inputs
//   std::cout << print_graph(g);
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "graph/node.h"
#include "graph/shape.h"
#include "graph/tensor.h"

namespace pyflame_rt {

struct ValueInfo {
  std::string name;
  DType dtype = DType::kUndefined;
  Shape shape = Shape::unknown_rank();
};

class Graph {
 public:
  std::string name;
  std::vector<Node> nodes;
  std::vector<ValueInfo> inputs;   // runtime inputs (initializers excluded)
  std::vector<ValueInfo> outputs;
  std::map<std::string, Tensor> initializers;
  std::map<std::string, ValueInfo> value_info;  // inferred types of intermediate values
  std::map<std::string, int64_t> opset_imports;  // domain ("" = ai.onnx) -> version
  // Initializers that were also listed as graph inputs (IR < 4): the feed may override them.
  std::set<std::string> overridable_initializers;

  Node& add_node(std::string op_type, std::vector<std::string> inputs,
                 std::vector<std::string> outputs, std::string name = "");

  int64_t opset(const std::string& domain = "") const;  // 0 if not imported
  const ValueInfo* find_input(const std::string& name) const;
  const ValueInfo* find_output(const std::string& name) const;
  // Type of any value: graph input/output, initializer or inferred intermediate (or nullptr).
  const ValueInfo* find_value_info(const std::string& name) const;

  // Orders nodes so producers precede consumers. Names produced by no node and not an input or
  // initializer are allowed only when `outer_scope` contains them (subgraphs of If/Loop/Scan).
  // Errors: a cycle (naming the nodes on it), a value produced twice, an undefined input.
  Status sort_topologically(const std::set<std::string>& outer_scope = {});
  // Checks that every graph output is produced by a node, an input or an initializer.
  Status validate(const std::set<std::string>& outer_scope = {}) const;
  // Checks the invariant passes keep without re-sorting: nodes already in topological order
  // (every input defined by an input, initializer, outer-scope name or an earlier node), each
  // value produced once, and validate(). Names the first offending node.
  Status check_sorted(const std::set<std::string>& outer_scope = {}) const;

  // Number of weight parameters (elements of all float initializers) and op histogram.
  int64_t parameter_count() const;
  std::map<std::string, int> op_histogram() const;  // includes subgraphs
};

// Deterministic text form: the same graph always prints the same text (attributes sorted,
// large tensors summarised). Used by pass tests and `pyflame-rt inspect`.
std::string print_graph(const Graph& g, int indent = 0);

}  // namespace pyflame_rt
