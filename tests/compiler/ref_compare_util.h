// Pass tests' numeric check: a graph before and after a rewrite computes the same first output
// on the reference device from the same feeds.
#pragma once

#include <gtest/gtest.h>

#include <vector>

#include "devices/ref/ref_program.h"
#include "graph/graph.h"

namespace pyflame_rt {

inline void expect_same_outputs(const Graph& before, const Graph& after, const std::vector<Value>& feeds,
                                float tolerance = 1e-5f) {
  auto a = (*RefProgram::build(before, KernelRegistry::reference()))->run(feeds);
  auto b = (*RefProgram::build(after, KernelRegistry::reference()))->run(feeds);
  ASSERT_TRUE(a.ok()) << "before: " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << "after: " << b.status().to_string();
  const Tensor& ta = (*a)[0].tensor;
  const Tensor& tb = (*b)[0].tensor;
  ASSERT_EQ(ta.dims(), tb.dims());
  for (int64_t i = 0; i < ta.numel(); ++i) {
    EXPECT_NEAR(ta.data<float>()[i], tb.data<float>()[i], tolerance) << "element " << i;
  }
}

}  // namespace pyflame_rt
