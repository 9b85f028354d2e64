// The wafer's layout pass and the pass registry: the pass records each wafer node's tiling,
// is idempotent, leaves graphs with nodes the wafer does not take alone; every pass the
// pipeline runs can be created by name.
#include <gtest/gtest.h>

#include "compiler/pass_registry.h"
#include "compiler/passes/mesh_layout.h"
#include "compiler/pipeline.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

Graph matmul_relu() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 512})});
  g.initializers["w"] = random_tensor({512, 256}, 1);
  g.add_node("MatMul", {"x", "w"}, {"m"}, "mm");
  g.value_info["m"] = {"m", DType::kFloat32, Shape::from_dims({1, 256})};
  g.add_node("Relu", {"m"}, {"y"}, "relu");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, 256})});
  return g;
}

TEST(MeshLayoutPass, RecordsTheTilingOnEveryNodeOnce) {
  Graph g = matmul_relu();
  auto spec = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabric", "16x16"}});
  ASSERT_TRUE(spec.ok());
  MeshLayout pass(*spec);
  bool changed = false;
  ASSERT_TRUE(pass.run(g, changed).ok());
  EXPECT_TRUE(changed);
  EXPECT_EQ(g.nodes[0].attr_string("pyflame_rt_wse_kind", ""), "gemm");
  std::vector<int64_t> split = g.nodes[0].attr_ints("pyflame_rt_wse_split");
  ASSERT_EQ(split.size(), 5u);
  EXPECT_GT(split[1] * split[2], 1);  // 512 KB of weights: spread over columns and rows
  std::vector<int64_t> rect = g.nodes[0].attr_ints("pyflame_rt_wse_rect");
  ASSERT_EQ(rect.size(), 5u);
  EXPECT_LE(rect[0] + rect[2], 16);
  EXPECT_EQ(g.nodes[1].attr_string("pyflame_rt_wse_kind", ""), "elementwise");
  ASSERT_TRUE(pass.run(g, changed).ok());
  EXPECT_FALSE(changed);  // same plan, nothing to rewrite
}

TEST(MeshLayoutPass, LeavesGraphsWithForeignNodesAlone) {
  Graph g = matmul_relu();
  g.add_node("Det", {"y"}, {"d"}, "det");
  MeshLayout pass;
  bool changed = true;
  ASSERT_TRUE(pass.run(g, changed).ok());
  EXPECT_FALSE(changed);
  EXPECT_FALSE(g.nodes[0].has_attr("pyflame_rt_wse_split"));
}

TEST(PassRegistry, EveryPipelinePassAndTheWaferPassByName) {
  for (const std::string& name : known_pass_names()) {
    auto p = create_pass(name);
    ASSERT_TRUE(p.ok()) << name;
    EXPECT_EQ((*p)->name(), name);
  }
  auto mesh = create_pass("wse_mesh_layout");
  ASSERT_TRUE(mesh.ok());
  auto bad = create_pass("no_such_pass");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("wse_mesh_layout"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
