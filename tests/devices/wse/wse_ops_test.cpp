// The wafer's simulator against the CPU device, op by op on a reduced fabric (so that every op
// is split over many PEs and partial sums cross PEs): normalised L2 error at most 1e-6 and
// every node reported on "wse3".
#include <gtest/gtest.h>

#include "tests/devices/wse/wse_test_util.h"

namespace pyflame_rt {
namespace {

struct OneNode {
  Graph g;
  std::vector<Value> feeds;
  OneNode(Node node, std::vector<std::pair<std::string, Tensor>> runtime,
          std::vector<std::pair<std::string, Tensor>> constants, std::vector<std::pair<std::string, Dims>> outputs) {
    g.opset_imports[""] = 13;
    g.opset_imports["pyflame_rt"] = 1;
    g.opset_imports["com.microsoft"] = 1;
    for (auto& r : runtime) {
      g.inputs.push_back({r.first, DType::kFloat32, Shape::from_dims(r.second.dims())});
      feeds.emplace_back(r.second);
    }
    for (auto& k : constants) g.initializers[k.first] = k.second;
    if (node.name.empty()) node.name = "n";
    g.nodes.push_back(node);
    for (auto& o : outputs) g.outputs.push_back({o.first, DType::kFloat32, Shape::from_dims(o.second)});
  }
};

Node make(const std::string& op, std::vector<std::string> in, std::vector<std::string> out, const std::string& domain = "") {
  Node n;
  n.op_type = op;
  n.domain = domain;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = op;
  return n;
}

const std::map<std::string, std::string> kSmallFabric = {{"fabric", "16x12"}};

int max_k_parts(const nlohmann::json& report) {
  int k = 0;
  for (const auto& p : report["partitions"]) for (const auto& op : p["ops"]) k = std::max(k, op["split"]["k"].get<int>());
  return k;
}

TEST(WseOps, GemvSplitsTheReductionOverColumns) {
  OneNode c(make("MatMul", {"x", "w"}, {"y"}), {{"x", random_tensor({1, 1500}, 1)}},
            {{"w", random_tensor({1500, 700}, 2)}}, {{"y", {1, 700}}});
  auto report = expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
  EXPECT_GT(max_k_parts(report), 1) << report.dump();  // 4.2 MB of weights need many PEs
}

TEST(WseOps, GemmWithBatchAndTransB) {
  Node n = make("Gemm", {"a", "b", "c"}, {"y"});
  n.attributes["transB"] = Attribute::make_int(1);
  n.attributes["alpha"] = Attribute::make_float(0.5f);
  OneNode c(n, {{"a", random_tensor({37, 129}, 3)}}, {{"b", random_tensor({65, 129}, 4)}, {"c", random_tensor({65}, 5)}},
            {{"y", {37, 65}}});
  expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
}

TEST(WseOps, FusedMatMulWithBiasAndGelu) {
  Node n = make("FusedMatMul", {"x", "w", "b"}, {"y"}, "pyflame_rt");
  n.attributes["activation"] = Attribute::make_string("Gelu");
  OneNode c(n, {{"x", random_tensor({2, 16, 96}, 6)}}, {{"w", random_tensor({96, 200}, 7)}, {"b", random_tensor({200}, 8)}},
            {{"y", {2, 16, 200}}});
  expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
}

TEST(WseOps, ConvPaddedStrided) {
  Node n = make("Conv", {"x", "w", "b"}, {"y"});
  n.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  n.attributes["strides"] = Attribute::make_ints({2, 2});
  OneNode c(n, {{"x", random_tensor({1, 24, 17, 17}, 9)}}, {{"w", random_tensor({40, 24, 3, 3}, 10)}, {"b", random_tensor({40}, 11)}},
            {{"y", {1, 40, 9, 9}}});
  auto report = expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
  EXPECT_FALSE(report.empty());
}

TEST(WseOps, FusedConvWithResidualAndRelu) {
  Node n = make("FusedConv", {"x", "w", "b", "z"}, {"y"}, "pyflame_rt");
  n.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  n.attributes["activation"] = Attribute::make_string("Relu");
  OneNode c(n, {{"x", random_tensor({2, 16, 10, 10}, 12)}, {"z", random_tensor({2, 32, 10, 10}, 13)}},
            {{"w", random_tensor({32, 16, 3, 3}, 14)}, {"b", random_tensor({32}, 15)}}, {{"y", {2, 32, 10, 10}}});
  expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
}

TEST(WseOps, DepthwiseAndGroupedConv) {
  for (int64_t groups : {32, 4}) {
    Node n = make("FusedConv", {"x", "w", "b"}, {"y"}, "pyflame_rt");
    n.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
    n.attributes["group"] = Attribute::make_int(groups);
    n.attributes["activation"] = Attribute::make_string("Clip");
    n.attributes["activation_params"] = Attribute::make_floats({0.f, 6.f});
    OneNode c(n, {{"x", random_tensor({1, 32, 14, 14}, 16)}},
              {{"w", random_tensor({32, 32 / groups, 3, 3}, 17)}, {"b", random_tensor({32}, 18)}}, {{"y", {1, 32, 14, 14}}});
    expect_wafer_matches_cpu(c.g, c.feeds, kSmallFabric);
  }
}

TEST(WseOps, PoolsNormsSoftmaxAndElementwise) {
  Graph g;
  g.opset_imports[""] = 17;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 8, 12, 12})});
  g.initializers["s"] = random_tensor({8}, 20);
  g.initializers["bb"] = random_tensor({8}, 21);
  Tensor mean = random_tensor({8}, 22), var = random_tensor({8}, 23);
  for (int64_t i = 0; i < 8; ++i) var.data<float>()[i] = 1.5f + var.data<float>()[i];
  g.initializers["mean"] = mean;
  g.initializers["var"] = var;
  g.initializers["gamma"] = random_tensor({12}, 24);
  g.initializers["beta"] = random_tensor({12}, 25);
  g.add_node("BatchNormalization", {"x", "s", "bb", "mean", "var"}, {"bn"}, "bn");
  g.add_node("Relu", {"bn"}, {"r"}, "relu");
  Node& mp = g.add_node("MaxPool", {"r"}, {"mp"}, "maxpool");
  mp.attributes["kernel_shape"] = Attribute::make_ints({2, 2});
  mp.attributes["strides"] = Attribute::make_ints({2, 2});
  Node& ap = g.add_node("AveragePool", {"r"}, {"ap"}, "avgpool");
  ap.attributes["kernel_shape"] = Attribute::make_ints({3, 3});
  ap.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  g.add_node("GlobalAveragePool", {"ap"}, {"gap"}, "gap");
  g.add_node("LayerNormalization", {"x", "gamma", "beta"}, {"ln"}, "ln");
  Node& sm = g.add_node("Softmax", {"ln"}, {"sm"}, "softmax");
  sm.attributes["axis"] = Attribute::make_int(-1);
  g.add_node("Sigmoid", {"sm"}, {"sg"}, "sigmoid");
  g.add_node("Mul", {"sg", "ln"}, {"out"}, "mul");
  g.outputs.push_back({"mp", DType::kFloat32, Shape::from_dims({1, 8, 6, 6})});
  g.outputs.push_back({"gap", DType::kFloat32, Shape::from_dims({1, 8, 1, 1})});
  g.outputs.push_back({"out", DType::kFloat32, Shape::from_dims({1, 8, 12, 12})});
  expect_wafer_matches_cpu(g, {Value(random_tensor({1, 8, 12, 12}, 26))}, kSmallFabric);
}

// GRU per PE tile, both reset forms, both directions, with biases and an initial state.
TEST(WseOps, GruTiledPerTimeStep) {
  for (int64_t lbr : {0, 1}) {
    const int64_t T = 6, B = 2, I = 20, H = 24;
    Node n = make("GRU", {"x", "w", "r", "b", "", "h0"}, {"y", "yh"});
    n.attributes["hidden_size"] = Attribute::make_int(H);
    n.attributes["linear_before_reset"] = Attribute::make_int(lbr);
    n.attributes["direction"] = Attribute::make_string("bidirectional");
    OneNode c(n, {{"x", random_tensor({T, B, I}, 30)}, {"h0", random_tensor({2, B, H}, 31)}},
              {{"w", random_tensor({2, 3 * H, I}, 32)}, {"r", random_tensor({2, 3 * H, H}, 33)}, {"b", random_tensor({2, 6 * H}, 34)}},
              {{"y", {T, 2, B, H}}, {"yh", {2, B, H}}});
    auto report = expect_wafer_matches_cpu(c.g, c.feeds, {{"fabric", "8x8"}});
    ASSERT_FALSE(report.empty()) << "linear_before_reset " << lbr;
    EXPECT_EQ(report["last_run"]["whole_tensor_ops"], 0) << report.dump();
    EXPECT_GT(report["last_run"]["pe_tiles"].get<int64_t>(), 2 * T * 2) << report.dump();
  }
}

TEST(WseOps, UnsupportedDtypesAndOpsAreDeclinedWithTheReason) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({4})});
  g.inputs.push_back({"i", DType::kInt64, Shape::from_dims({4})});
  g.add_node("Relu", {"x"}, {"r"}, "relu");
  g.add_node("Neg", {"i"}, {"ni"}, "neg_int");
  g.add_node("Det", {"x"}, {"d"}, "det");
  auto wse = make_device("wse3");
  auto claim = wse->claim(g, {false, false, false});
  ASSERT_EQ(claim.groups.size(), 1u);
  EXPECT_EQ(claim.groups[0], std::vector<size_t>{0});
  ASSERT_EQ(claim.declined.size(), 2u);
  EXPECT_NE(claim.declined[1].find("dtype int64 of input 'i'"), std::string::npos) << claim.declined[1];
  EXPECT_NE(claim.declined[2].find("Det"), std::string::npos) << claim.declined[2];
}

TEST(WseOps, RegistryHasBothGenerationsUnderTheCerebrasProvider) {
  auto& reg = DeviceRegistry::global();
  ASSERT_NE(reg.find("wse3"), nullptr);
  ASSERT_NE(reg.find("wse2"), nullptr);
  EXPECT_EQ(reg.find("CerebrasExecutionProvider")->name, "wse3");
  EXPECT_EQ(reg.find("wse2")->provider, "CerebrasExecutionProvider");
  DeviceConfig unknown_option;
  unknown_option.options = {{"colour", "1"}};
  auto bad = reg.create("wse3", unknown_option);
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace pyflame_rt
