// A graph of one node on run-time inputs, with its feeds: what the kernel regression tests
// (kernel_run findings, deadlines inside kernels) run on each device.
#pragma once

#include <string>
#include <vector>

#include "graph/graph.h"
#include "graph/value.h"

namespace pyflame_rt {

struct OneNode {
  Graph g;
  std::vector<Value> feeds;
};

// `op` (of `domain`, opset 1 there) named `name` on runtime inputs in0.. fed `inputs`, with
// `n_out` outputs named out0.. (an op's optional outputs beyond them left off, as a model may).
inline OneNode one_node_model(const std::string& op, std::vector<Tensor> inputs, size_t n_out, int64_t opset,
                              const std::string& domain, const std::string& name) {
  OneNode m;
  m.g.opset_imports[""] = opset;
  if (!domain.empty()) m.g.opset_imports[domain] = 1;
  Node n;
  n.op_type = op;
  n.domain = domain;
  n.name = name;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string in = "in" + std::to_string(i);
    m.g.inputs.push_back({in, inputs[i].dtype(), Shape::from_dims(inputs[i].dims())});
    n.inputs.push_back(in);
    m.feeds.emplace_back(std::move(inputs[i]));
  }
  for (size_t i = 0; i < n_out; ++i) {
    n.outputs.push_back("out" + std::to_string(i));
    m.g.outputs.push_back({n.outputs.back(), DType::kUndefined, Shape::unknown_rank()});
  }
  m.g.nodes.push_back(n);
  return m;
}

}  // namespace pyflame_rt
