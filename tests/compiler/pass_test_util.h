// Helpers for pass tests: build a tiny graph, run one pass, compare the printed IR.
#pragma once

#include <gtest/gtest.h>

#include "compiler/pass.h"

namespace pyflame_rt {

inline ValueInfo f32(const std::string& name, Dims dims) {
  return {name, DType::kFloat32, Shape::from_dims(dims)};
}

// Runs `pass` once; returns the printed graph after it and whether it reported a change.
inline std::string run_pass(Pass& pass, Graph& g, bool* changed) {
  bool c = false;
  Status st = pass.run(g, c);
  EXPECT_TRUE(st.ok()) << st.to_string();
  if (changed) *changed = c;
  return print_graph(g);
}

}  // namespace pyflame_rt
