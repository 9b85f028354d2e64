#include "compiler/pipeline.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

Graph shape_chain() {
  // y = Reshape(x, Concat(Shape(x)[0:1], [-1])): all shape arithmetic folds for a static x.
  Graph g;
  g.opset_imports[""] = 15;
  g.inputs = {f32("x", {2, 3, 4})};
  Node& s = g.add_node("Shape", {"x"}, {"s"});
  s.attributes["end"] = Attribute::make_int(1);
  g.initializers["minus1"] = Tensor::from_vector<int64_t>({1}, {-1});
  g.add_node("Concat", {"s", "minus1"}, {"target"}).attributes["axis"] = Attribute::make_int(0);
  g.add_node("Identity", {"target"}, {"target2"});
  g.add_node("Reshape", {"x", "target2"}, {"y"});
  g.outputs = {f32("y", {2, 12})};
  return g;
}

TEST(PipelineTest, BasicFoldsShapeArithmeticToOneNode) {
  auto g = optimize_graph(shape_chain(), OptLevel::kBasic, {});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  EXPECT_EQ(print_graph(*g),
            "graph main (%x: float32[2,3,4]) {\n"
            "  init %target = int64[2]{2,-1}\n"
            "  %y = Reshape(%x, %target)\n"
            "  return %y\n"
            "}\n");
}

// Regression (RegNet, MaxViT at EXTENDED): the residual fusion left the projection conv reading
// a value made later; dead-code elimination in the next round, walking backwards, then dropped
// that value's producer and the FusedConv read a value no node produced.
TEST(PipelineTest, ProjectionShortcutBlockStaysValidThroughEveryPass) {
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {f32("x", {1, 2, 4, 4})};
  for (const char* w : {"wp", "wa", "wc"}) g.initializers[w] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "wp"}, {"p"}, "proj");
  g.add_node("Conv", {"x", "wa"}, {"a"}, "a");
  g.add_node("Relu", {"a"}, {"ar"}, "a_relu");
  g.add_node("Conv", {"ar", "wc"}, {"c"}, "c");
  g.add_node("Add", {"p", "c"}, {"s"}, "add");
  g.add_node("Relu", {"s"}, {"y"}, "out_relu");
  for (const char* v : {"p", "a", "ar", "c", "s"}) g.value_info[v] = f32(v, {1, 2, 4, 4});
  g.outputs = {f32("y", {1, 2, 4, 4})};
  bool was = verify_passes();
  set_verify_passes(true);
  for (OptLevel level : {OptLevel::kExtended, OptLevel::kAll}) {
    auto out = optimize_graph(g, level, {});
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    std::string ir = print_graph(*out);
    // The branch conv c survives, before the projection that now sums it in.
    size_t c = ir.find("%c = Conv(%ar, %wc)"), y = ir.find("%y = pyflame_rt.FusedConv(%x, %wp, _, %c)");
    EXPECT_NE(c, std::string::npos) << ir;
    EXPECT_NE(y, std::string::npos) << ir;
    EXPECT_LT(c, y) << ir;
    EXPECT_EQ(out->nodes.size(), 3u) << ir;
  }
  set_verify_passes(was);
}

TEST(PipelineTest, VerificationNamesThePassThatBrokeTheGraph) {
  // A pass that drops a node others read: the pipeline names it instead of failing later.
  struct Breaker : Pass {
    const char* name() const override { return "breaker"; }
    const char* summary() const override { return "drops the first node"; }
    Status run(Graph& g, bool& changed) override {
      g.nodes.erase(g.nodes.begin());
      changed = true;
      return Status::OK();
    }
  };
  std::vector<std::unique_ptr<Pass>> passes;
  passes.push_back(std::make_unique<Breaker>());
  bool was = verify_passes();
  set_verify_passes(true);
  auto out = run_passes(shape_chain(), passes, {});
  set_verify_passes(was);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidGraph);
  EXPECT_NE(out.status().message().find("pass breaker"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("'s'"), std::string::npos) << out.status().message();
}

TEST(PipelineTest, NoneLeavesGraphAlone) {
  auto g = optimize_graph(shape_chain(), OptLevel::kNone, {});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->nodes.size(), 4u);
}

TEST(PipelineTest, DisabledPassIsSkippedAndUnknownNameRejected) {
  auto g = optimize_graph(shape_chain(), OptLevel::kAll, {"shape_folding"});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->nodes.size(), 3u);  // Shape stays, so Concat cannot fold; Identity went
  auto bad = optimize_graph(shape_chain(), OptLevel::kAll, {"no_such_pass"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'no_such_pass'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("constant_folding"), std::string::npos);
}

}  // namespace
}  // namespace pyflame_rt
