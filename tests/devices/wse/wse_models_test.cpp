// Small whole models on the wafer against the CPU device: the example CNN and GRU (optimised
// as sessions optimise them) and a transformer encoder block of our fused ops, on a reduced
// fabric. Every node runs on "wse3"; outputs within 1e-6 (normalised L2).
#include <gtest/gtest.h>

#include "compiler/pipeline.h"
#include "graph/model_loader.h"
#include "tests/devices/wse/wse_test_util.h"

namespace pyflame_rt {
namespace {

std::vector<Value> feeds_for(const Graph& g, uint32_t seed) {
  std::vector<Value> feeds;
  for (const auto& in : g.inputs) {
    Dims d;
    for (const auto& x : in.shape.dims) d.push_back(x.known() ? x.value : 1);
    feeds.emplace_back(random_tensor(d, seed++));
  }
  return feeds;
}

void run_example(const std::string& file) {
  auto loaded = load_model_file(std::string(PFRT_EXAMPLE_MODELS) + "/" + file);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  auto g = optimize_graph(std::move(*loaded), OptLevel::kExtended, {});
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  auto report = expect_wafer_matches_cpu(*g, feeds_for(*g, 7), {{"fabric", "64x64"}});
  ASSERT_FALSE(report.empty());
  // The report's required fields, with values that mean something.
  for (const char* key : {"device", "partitions", "pes_used", "utilisation", "est_latency_us", "est_throughput_per_s",
                          "host_io_us", "extrapolated"}) {
    EXPECT_TRUE(report.contains(key)) << key;
  }
  EXPECT_EQ(report["device"], "wse3");
  int64_t pes = 0;
  for (const auto& p : report["partitions"]) {
    EXPECT_EQ(p["rect"].size(), 4u);
    EXPECT_EQ(p["pes"].get<int64_t>(), p["rect"][2].get<int64_t>() * p["rect"][3].get<int64_t>());
    EXPECT_LE(p["sram_bytes_max"].get<int64_t>(), 48 * 1024);
    EXPECT_LE(p["sram_bytes_mean"].get<int64_t>(), p["sram_bytes_max"].get<int64_t>());
    EXPECT_GT(p["est_cycles"].get<double>(), 0);
    pes += p["pes"].get<int64_t>();
  }
  EXPECT_EQ(report["pes_used"].get<int64_t>(), pes * report["replicas"].get<int64_t>());
  EXPECT_GT(report["est_latency_us"].get<double>(), report["host_io_us"].get<double>());
}

TEST(WseModels, ExampleCnn) { run_example("tiny_cnn.onnx"); }
TEST(WseModels, ExampleGru) { run_example("tiny_gru.onnx"); }

// x -> MHA(xWq, xWk, xWv) Wo + x -> LayerNorm -> FusedMatMul(Gelu) -> FusedMatMul + . -> LayerNorm:
// the fused ops our passes produce from torch's TransformerEncoderLayer.
TEST(WseModels, TransformerEncoderBlockOfFusedOps) {
  const int64_t L = 24, E = 32, F = 64;
  Graph g;
  g.opset_imports[""] = 17;
  g.opset_imports["pyflame_rt"] = 1;
  g.opset_imports["com.microsoft"] = 1;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, L, E})});
  uint32_t seed = 40;
  auto weight = [&](const std::string& name, Dims d) { g.initializers[name] = random_tensor(d, seed++); };
  auto info = [&](const std::string& name, Dims d) { g.value_info[name] = {name, DType::kFloat32, Shape::from_dims(d)}; };
  for (const char* w : {"wq", "wk", "wv", "wo"}) weight(w, {E, E});
  for (const char* b : {"bq", "bk", "bv", "bo", "g1", "be1", "b2", "g2", "be2"}) weight(b, {E});
  weight("w1", {E, F});
  weight("b1", {F});
  weight("w2", {F, E});
  auto fused = [&](const std::string& name, std::vector<std::string> in, const std::string& out, const char* act,
                   Dims d) -> Node& {
    Node& n = g.add_node("FusedMatMul", std::move(in), {out}, name);
    n.domain = "pyflame_rt";
    if (act) n.attributes["activation"] = Attribute::make_string(act);
    info(out, d);
    return n;
  };
  fused("q", {"x", "wq", "bq"}, "q", nullptr, {1, L, E});
  fused("k", {"x", "wk", "bk"}, "k", nullptr, {1, L, E});
  fused("v", {"x", "wv", "bv"}, "v", nullptr, {1, L, E});
  Node& mha = g.add_node("MultiHeadAttention", {"q", "k", "v"}, {"att"}, "mha");
  mha.domain = "pyflame_rt";
  mha.attributes["num_heads"] = Attribute::make_int(4);
  mha.attributes["scale"] = Attribute::make_float(1.0f / std::sqrt(8.0f));
  info("att", {1, L, E});
  fused("o", {"att", "wo", "bo"}, "o", nullptr, {1, L, E});
  g.add_node("Add", {"o", "x"}, {"r1"}, "res1");
  info("r1", {1, L, E});
  Node& ln1 = g.add_node("LayerNormalization", {"r1", "g1", "be1"}, {"n1"}, "ln1");
  ln1.attributes["axis"] = Attribute::make_int(-1);
  info("n1", {1, L, E});
  fused("ff1", {"n1", "w1", "b1"}, "h", "Gelu", {1, L, F});
  fused("ff2", {"h", "w2", "b2"}, "f", nullptr, {1, L, E});
  g.add_node("Add", {"f", "n1"}, {"r2"}, "res2");
  info("r2", {1, L, E});
  g.add_node("LayerNormalization", {"r2", "g2", "be2"}, {"y"}, "ln2");
  g.outputs.push_back({"y", DType::kFloat32, Shape::from_dims({1, L, E})});
  auto report = expect_wafer_matches_cpu(g, feeds_for(g, 3), {{"fabric", "32x32"}});
  ASSERT_FALSE(report.empty());
  bool attention = false;
  for (const auto& p : report["partitions"]) for (const auto& op : p["ops"]) attention |= op["kind"] == "attention";
  EXPECT_TRUE(attention);
  // Only the two residual Adds (elementwise: nothing crosses PEs) are computed whole-tensor.
  EXPECT_EQ(report["last_run"]["whole_tensor_ops"], 2) << report["last_run"].dump();
}

}  // namespace
}  // namespace pyflame_rt
