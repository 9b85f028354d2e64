#include "devices/ref/ref_program.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace {

// A test-only registry with one kernel, so the interpreter is tested apart from the op set.
Status add_one(KernelContext& ctx) {
  const Tensor& x = *ctx.input(0);
  Tensor y(x.dtype(), x.dims());
  for (int64_t i = 0; i < x.numel(); ++i) y.data<float>()[i] = x.data<float>()[i] + 1.0f;
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

TEST(RefProgramTest, RunsChainInTopologicalOrder) {
  KernelRegistry r;
  r.add("", "AddOne", add_one);
  Graph g;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({3})});
  g.add_node("AddOne", {"h"}, {"y"});
  g.add_node("AddOne", {"x"}, {"h"});
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({3})});
  auto program = RefProgram::build(g, r);
  ASSERT_TRUE(program.ok()) << program.status().to_string();
  auto out = (*program)->run({Value(Tensor::from_vector<float>({3}, {1, 2, 3}))});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].tensor;
  EXPECT_EQ(y.data<float>()[0], 3.0f);
  EXPECT_EQ(y.data<float>()[2], 5.0f);
}

TEST(RefProgramTest, WrongInputCountIsError) {
  KernelRegistry r;
  r.add("", "AddOne", add_one);
  Graph g;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({3})});
  g.add_node("AddOne", {"x"}, {"y"});
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({3})});
  auto program = RefProgram::build(g, r);
  ASSERT_TRUE(program.ok());
  EXPECT_FALSE((*program)->run({}).ok());
}

}  // namespace
}  // namespace pyflame_rt
