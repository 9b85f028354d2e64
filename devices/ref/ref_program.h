// RefProgram: a graph prepared for the reference interpreter. Names are resolved to slot
// indices and kernels looked up once, so running does no string lookups (outside subgraph
// scopes) and frees every intermediate value right after its last use.
//
//   ASSIGN_OR_RETURN(auto program, RefProgram::build(graph, KernelRegistry::reference()));
//   ASSIGN_OR_RETURN(std::vector<Value> outs, program->run(feeds_in_graph_input_order));
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "devices/ref/kernel.h"

namespace pyflame_rt {

class RefProgram {
 public:
  // `outer_scope` lists names a subgraph may read from enclosing graphs.
  static Expected<std::shared_ptr<RefProgram>> build(const Graph& graph,
                                                     const KernelRegistry& registry,
                                                     const std::set<std::string>& outer_scope = {});

  // Inputs in the order of graph.inputs; returns values in the order of graph.outputs.
  Expected<std::vector<Value>> run(std::vector<Value> inputs) const;

  const Graph& graph() const { return graph_; }

 private:
  struct Step {
    const Node* node;
    KernelFn kernel;
    int64_t opset;
    std::vector<int> inputs;   // slot per input, -1 when omitted
    std::vector<int> outputs;  // slot per output, -1 when unnamed
    std::vector<int> implicit_inputs;  // slots read by the node's subgraphs
    std::vector<int> release;  // slots whose last use is this step
  };
  class Frame;
  friend class Frame;

  Expected<std::vector<Value>> run_in_scope(std::vector<Value> inputs, const Frame* parent) const;

  Graph graph_;  // own copy: the program outlives the caller's graph
  std::unordered_map<std::string, int> slot_of_;
  std::vector<std::string> slot_names_;
  std::vector<int> input_slots_;
  std::vector<int> output_slots_;
  std::vector<std::pair<int, Tensor>> constant_slots_;  // initializers
  std::vector<std::pair<int, std::string>> outer_slots_;  // read from enclosing scopes
  std::vector<Step> steps_;
  std::map<const Graph*, std::shared_ptr<RefProgram>> subprograms_;
};

}  // namespace pyflame_rt
