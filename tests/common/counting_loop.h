// A model whose run lasts as long as its feeds say: acc = acc0 + trips, a Loop adding one per
// iteration. With 2^40 trips it runs for hours unless something stops it (terminate, a
// deadline, stop_all_runs, a RunStopSource): what the run-stopping tests run.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "graph/graph.h"
#include "graph/tensor.h"

namespace pyflame_rt {

inline Graph counting_loop() {
  auto body = std::make_shared<Graph>();
  body->name = "body";
  body->opset_imports[""] = 13;
  body->inputs = {{"iter", DType::kInt64, Shape::from_dims({})},
                  {"cond_in", DType::kBool, Shape::from_dims({})},
                  {"acc_in", DType::kFloat32, Shape::from_dims({1})}};
  body->initializers["one"] = Tensor::from_vector<float>({1}, {1.f});
  body->add_node("Identity", {"cond_in"}, {"cond_out"});
  body->add_node("Add", {"acc_in", "one"}, {"acc_out"});
  body->outputs = {{"cond_out", DType::kBool, Shape::from_dims({})}, {"acc_out", DType::kFloat32, Shape::from_dims({1})}};
  Graph g;
  g.name = "loop";
  g.opset_imports[""] = 13;
  g.inputs = {{"trips", DType::kInt64, Shape::from_dims({})},
              {"cond", DType::kBool, Shape::from_dims({})},
              {"acc0", DType::kFloat32, Shape::from_dims({1})}};
  Node& loop = g.add_node("Loop", {"trips", "cond", "acc0"}, {"acc"}, "loop");
  loop.attributes["body"] = Attribute::make_graph(body);
  g.outputs = {{"acc", DType::kFloat32, Shape::from_dims({1})}};
  return g;
}

inline std::map<std::string, Tensor> loop_feeds(int64_t trips) {
  return {{"trips", Tensor::scalar<int64_t>(trips)}, {"cond", Tensor::scalar<bool>(true)},
          {"acc0", Tensor::from_vector<float>({1}, {0.f})}};
}

}  // namespace pyflame_rt
