#include "compiler/passes/matmul_add_fusion.h"

#include "devices/ref/ref_program.h"
#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph matmul_bias(Dims bias_dims) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs = {f32("a", {2, 3})};
  g.initializers["w"] = Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6});
  g.initializers["b"] = Tensor::from_vector<float>(bias_dims, {10, 20, 30, 40});
  g.add_node("MatMul", {"a", "w"}, {"m"});
  g.add_node("Add", {"b", "m"}, {"y"});
  g.outputs = {f32("y", {2, 2})};
  return g;
}

TEST(MatMulAddFusionTest, BiasAddBecomesFusedMatMulInput) {
  Graph g = matmul_bias({2});
  MatMulAddFusion pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  ASSERT_TRUE(changed);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "FusedMatMul");
  EXPECT_EQ(g.nodes[0].inputs, (std::vector<std::string>{"a", "w", "b"}));
  EXPECT_EQ(g.nodes[0].outputs[0], "y");
  Graph plain = matmul_bias({2});
  Tensor a = Tensor::from_vector<float>({2, 3}, {1, 0, -1, 0.5f, 2, 3});
  auto x = (*RefProgram::build(plain, KernelRegistry::reference()))->run({a});
  auto z = (*RefProgram::build(g, KernelRegistry::reference()))->run({a});
  ASSERT_TRUE(x.ok() && z.ok());
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ((*x)[0].tensor.data<float>()[i], (*z)[0].tensor.data<float>()[i]);
}

TEST(MatMulAddFusionTest, RowBiasIsNotAColumnBias) {
  Graph g = matmul_bias({2, 1});  // broadcasts over rows: not a per-column bias
  g.initializers["b"] = Tensor::from_vector<float>({2, 1}, {10, 20});
  MatMulAddFusion pass;
  bool changed = true;
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace pyflame_rt
