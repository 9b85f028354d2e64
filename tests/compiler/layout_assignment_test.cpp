#include "compiler/passes/layout_assignment.h"

#include "pass_test_util.h"

namespace pyflame_rt {
namespace {

std::string attr(const Graph& g, const std::string& output, const char* key) {
  for (const auto& n : g.nodes) {
    if (n.outputs[0] == output) return n.has_attr(key) ? n.attr_string(key, "") : "(none)";
  }
  return "(no node)";
}

// x -> conv1 (3->16) -> relu -> GAP -> conv_se (16->4) -> sigmoid -> mul(relu, gate) -> conv2
// -> flatten: one region (squeeze-excite included) with 16-channel convs: all blocked; the
// first conv reads the graph input and keeps the kernel's choice for its source.
Graph squeeze_excite_net() {
  Graph g;
  g.inputs = {f32("x", {1, 3, 8, 8})};
  g.initializers["w1"] = Tensor(DType::kFloat32, {16, 3, 3, 3});
  g.initializers["wse"] = Tensor(DType::kFloat32, {16, 16, 1, 1});
  g.initializers["w2"] = Tensor(DType::kFloat32, {16, 16, 1, 1});
  g.add_node("Conv", {"x", "w1"}, {"c1"}).attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("Relu", {"c1"}, {"r"});
  g.add_node("GlobalAveragePool", {"r"}, {"m"});
  g.add_node("Conv", {"m", "wse"}, {"se"});
  g.add_node("Sigmoid", {"se"}, {"gate"});
  g.add_node("Mul", {"r", "gate"}, {"y"});
  g.add_node("Conv", {"y", "w2"}, {"c2"});
  g.add_node("Flatten", {"c2"}, {"out"});
  for (const char* v : {"c1", "r", "y", "c2"}) g.value_info[v] = f32(v, {1, 16, 8, 8});
  for (const char* v : {"m", "se", "gate"}) g.value_info[v] = f32(v, {1, 16, 1, 1});
  g.outputs = {f32("out", {1, 1024})};
  return g;
}

TEST(LayoutAssignmentTest, OneBlockedRegionThroughSqueezeExcite) {
  Graph g = squeeze_excite_net();
  LayoutAssignment pass;
  bool changed = false;
  run_pass(pass, g, &changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(attr(g, "c1", "pyflame_rt_dst_layout"), "blocked");
  EXPECT_EQ(attr(g, "c1", "pyflame_rt_src_layout"), "(none)");  // the graph input
  for (const char* conv : {"se", "c2"}) {
    EXPECT_EQ(attr(g, conv, "pyflame_rt_dst_layout"), "blocked") << conv;
    EXPECT_EQ(attr(g, conv, "pyflame_rt_src_layout"), "blocked") << conv;
  }
  // Idempotent: a second round changes nothing (the pipeline runs passes until none changes).
  run_pass(pass, g, &changed);
  EXPECT_FALSE(changed);
}

TEST(LayoutAssignmentTest, RegionWithOnlyTinyConvolutionsStaysPlain) {
  Graph g;
  g.inputs = {f32("x", {1, 1, 5, 5})};
  g.initializers["w1"] = Tensor(DType::kFloat32, {2, 1, 3, 3});
  g.initializers["w2"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "w1"}, {"a"});
  g.add_node("Conv", {"a", "w2"}, {"b"});
  g.value_info["a"] = f32("a", {1, 2, 3, 3});
  g.outputs = {f32("b", {1, 2, 3, 3})};
  LayoutAssignment pass;
  run_pass(pass, g, nullptr);
  EXPECT_EQ(attr(g, "a", "pyflame_rt_dst_layout"), "plain");
  EXPECT_EQ(attr(g, "b", "pyflame_rt_src_layout"), "plain");
}

// A group of 2^62 on a W with 2 channels per group: W's channels times group overflowed int64
// while the pass sized the convolution (UBSan, kernel_run stop 15). It counts as a wide
// convolution, so the region is blocked; the kernels then refuse the node by name.
TEST(LayoutAssignmentTest, GroupWhoseChannelsPassInt64CountsAsWide) {
  Graph g;
  g.inputs = {f32("x", {1, 1, 5, 5})};
  g.initializers["w1"] = Tensor(DType::kFloat32, {2, 1, 3, 3});
  g.initializers["w2"] = Tensor(DType::kFloat32, {2, 2, 1, 1});
  g.add_node("Conv", {"x", "w1"}, {"a"});
  g.add_node("Conv", {"a", "w2"}, {"b"}).attributes["group"] = Attribute::make_int(int64_t{1} << 62);
  g.value_info["a"] = f32("a", {1, 2, 3, 3});
  g.outputs = {f32("b", {1, 2, 3, 3})};
  LayoutAssignment pass;
  run_pass(pass, g, nullptr);
  EXPECT_EQ(attr(g, "a", "pyflame_rt_dst_layout"), "blocked");
}

TEST(LayoutAssignmentTest, ValuesOfUnknownRankSplitRegions) {
  Graph g = squeeze_excite_net();
  g.value_info.erase("y");  // the Mul's output rank unknown: it is not part of a region
  LayoutAssignment pass;
  run_pass(pass, g, nullptr);
  EXPECT_EQ(attr(g, "c2", "pyflame_rt_src_layout"), "(none)");
  EXPECT_EQ(attr(g, "c2", "pyflame_rt_dst_layout"), "blocked");  // its own 16 channels
}

// conv a, conv b -> Concat(axis 1) -> conv c (DenseNet): the channel concat joins one blocked
// region, so c reads its input blocked; a Concat along another axis splits the region.
TEST(LayoutAssignmentTest, ChannelConcatJoinsTheRegion) {
  for (int64_t axis : {1, 2}) {
    Graph g;
    g.inputs = {f32("x", {1, 16, 8, 8})};
    for (const char* w : {"wa", "wb"}) g.initializers[w] = Tensor(DType::kFloat32, {16, 16, 1, 1});
    g.initializers["wc"] = Tensor(DType::kFloat32, {16, axis == 1 ? 32 : 16, 1, 1});
    g.add_node("Conv", {"x", "wa"}, {"a"});
    g.add_node("Conv", {"x", "wb"}, {"b"});
    g.add_node("Concat", {"a", "b"}, {"cat"}).attributes["axis"] = Attribute::make_int(axis);
    g.add_node("Conv", {"cat", "wc"}, {"c"});
    for (const char* v : {"a", "b"}) g.value_info[v] = f32(v, {1, 16, 8, 8});
    g.value_info["cat"] = f32("cat", axis == 1 ? Dims{1, 32, 8, 8} : Dims{1, 16, 16, 8});
    g.outputs = {f32("c", axis == 1 ? Dims{1, 16, 8, 8} : Dims{1, 16, 16, 8})};
    LayoutAssignment pass;
    run_pass(pass, g, nullptr);
    EXPECT_EQ(attr(g, "c", "pyflame_rt_src_layout"), axis == 1 ? "blocked" : "(none)") << "axis " << axis;
  }
}

}  // namespace
}  // namespace pyflame_rt
