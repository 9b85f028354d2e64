// The wafer's placed plan as CSL: a small CNN (Conv, Relu, MaxPool, GlobalAveragePool, Flatten,
// Gemm, Softmax) placed by devices/wse/placement, every partition generated and checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "compiler/csl/from_mesh_plan.h"
#include <nlohmann/json.hpp>

#include "devices/device_registry.h"
#include "devices/wse/placement.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt::csl {
namespace {

namespace fs = std::filesystem;

Graph tiny_cnn() {
  Graph g;
  g.opset_imports[""] = 13;
  auto info = [&](const std::string& n, std::vector<int64_t> d) {
    g.value_info[n] = {n, DType::kFloat32, Shape::from_dims(d)};
  };
  g.inputs.push_back({"image", DType::kFloat32, Shape::from_dims({1, 3, 16, 16})});
  g.initializers["w1"] = random_tensor({8, 3, 3, 3}, 1);
  g.initializers["b1"] = random_tensor({8}, 2);
  g.initializers["fc.w"] = random_tensor({10, 8}, 3);
  g.initializers["fc.b"] = random_tensor({10}, 4);
  Node& c = g.add_node("Conv", {"image", "w1", "b1"}, {"c1"}, "conv1");
  c.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  c.attributes["kernel_shape"] = Attribute::make_ints({3, 3});
  info("c1", {1, 8, 16, 16});
  g.add_node("Relu", {"c1"}, {"r1"}, "relu1");
  info("r1", {1, 8, 16, 16});
  Node& p = g.add_node("MaxPool", {"r1"}, {"p1"}, "pool1");
  p.attributes["kernel_shape"] = Attribute::make_ints({2, 2});
  p.attributes["strides"] = Attribute::make_ints({2, 2});
  info("p1", {1, 8, 8, 8});
  g.add_node("GlobalAveragePool", {"p1"}, {"gap"}, "gap");
  info("gap", {1, 8, 1, 1});
  g.add_node("Flatten", {"gap"}, {"flat"}, "flatten");
  info("flat", {1, 8});
  Node& fc = g.add_node("Gemm", {"flat", "fc.w", "fc.b"}, {"logits"}, "fc");
  fc.attributes["transB"] = Attribute::make_int(1);
  info("logits", {1, 10});
  g.add_node("Softmax", {"logits"}, {"probs"}, "softmax");
  g.outputs.push_back({"probs", DType::kFloat32, Shape::from_dims({1, 10})});
  return g;
}

TEST(CslFromMeshPlan, EveryPartitionOfATinyCnnGenerates) {
  auto spec = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabric", "32x32"}});
  ASSERT_TRUE(spec.ok());
  Graph g = tiny_cnn();
  auto plan = plan_mesh(g, *spec);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  const fs::path dir = fs::temp_directory_path() / ("pfrt_csl_plan_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  PlanCsl csl = write_plan_csl(*plan, *spec, &g, dir.string());
  for (const auto& [id, st] : csl.failed) ADD_FAILURE() << "partition " << id << ": " << st.to_string();
  ASSERT_EQ(csl.written.size(), plan->partitions.size());
  std::set<std::string> nodes;
  for (const CslPartitionOutput& out : csl.written) {
    EXPECT_TRUE(out.check.errors.empty());
    EXPECT_LE(out.check.sram_bytes_max, spec->sram_bytes_per_pe);
    EXPECT_TRUE(fs::exists(dir / out.name / "layout.csl")) << out.name;
    EXPECT_NE(out.files.at("compile.sh").find("FABRIC=" + std::to_string(spec->fabric_width) + "," +
                                              std::to_string(spec->fabric_height) + " ./compile.sh"),
              std::string::npos);
    for (const OpCode& op : out.program.ops) nodes.insert(op.node);
  }
  for (const Node& n : g.nodes) EXPECT_TRUE(nodes.count(n.name)) << n.name << " is in no generated partition";
  // Same plan, same bytes.
  PlanCsl again = write_plan_csl(*plan, *spec, &g, "");
  ASSERT_EQ(again.written.size(), csl.written.size());
  for (size_t i = 0; i < csl.written.size(); ++i) EXPECT_EQ(again.written[i].files, csl.written[i].files);
  if (!std::getenv("PFRT_KEEP_CSL")) fs::remove_all(dir);
}

// Two stacked GRU layers as PyTorch exports them (h0 sliced per layer, Y squeezed, the Y_h of
// both concatenated): every partition generates, Slice's constant inputs reach run.py, and the
// first layer's Y_h leaves its partition although the plan tiles only a GRU's first output.
Graph two_layer_gru() {
  Graph g;
  g.opset_imports[""] = 13;
  auto info = [&](const std::string& n, std::vector<int64_t> d) {
    g.value_info[n] = {n, DType::kFloat32, Shape::from_dims(d)};
  };
  auto ints = [&](const std::string& n, std::vector<int64_t> v) {
    g.initializers[n] = Tensor::from_vector<int64_t>({static_cast<int64_t>(v.size())}, v);
  };
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({3, 1, 4})});
  g.inputs.push_back({"h0", DType::kFloat32, Shape::from_dims({2, 1, 5})});
  ints("zero", {0});
  ints("one", {1});
  ints("two", {2});
  for (int l = 1; l <= 2; ++l) {
    const std::string L = std::to_string(l);
    const int64_t in = l == 1 ? 4 : 5;
    g.initializers["W" + L] = random_tensor({1, 15, in}, 10 + l);
    g.initializers["R" + L] = random_tensor({1, 15, 5}, 20 + l);
    g.initializers["B" + L] = random_tensor({1, 30}, 30 + l);
    g.add_node("Slice", {"h0", l == 1 ? "zero" : "one", l == 1 ? "one" : "two", "zero"}, {"h0_" + L}, "slice" + L);
    info("h0_" + L, {1, 1, 5});
    Node& gru = g.add_node("GRU", {l == 1 ? "x" : "y1s", "W" + L, "R" + L, "B" + L, "", "h0_" + L}, {"Y" + L, "Yh" + L},
                           "gru" + L);
    gru.attributes["hidden_size"] = Attribute::make_int(5);
    gru.attributes["linear_before_reset"] = Attribute::make_int(1);
    info("Y" + L, {3, 1, 1, 5});
    info("Yh" + L, {1, 1, 5});
    if (l == 1) {
      g.add_node("Squeeze", {"Y1", "one"}, {"y1s"}, "squeeze1");
      info("y1s", {3, 1, 5});
    }
  }
  Node& cat = g.add_node("Concat", {"Yh1", "Yh2"}, {"hn"}, "concat");
  cat.attributes["axis"] = Attribute::make_int(0);
  g.outputs.push_back({"Y2", DType::kFloat32, Shape::from_dims({3, 1, 1, 5})});
  g.outputs.push_back({"hn", DType::kFloat32, Shape::from_dims({2, 1, 5})});
  return g;
}

TEST(CslFromMeshPlan, StackedGruGeneratesWithYhAndSlices) {
  auto spec = wse_spec_with_options(wse_spec(WseGeneration::kWse3), {{"fabric", "32x32"}});
  ASSERT_TRUE(spec.ok());
  Graph g = two_layer_gru();
  auto plan = plan_mesh(g, *spec);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  PlanCsl csl = write_plan_csl(*plan, *spec, &g, "");
  for (const auto& [id, st] : csl.failed) ADD_FAILURE() << "partition " << id << ": " << st.to_string();
  ASSERT_EQ(csl.written.size(), plan->partitions.size());
  std::set<std::string> nodes;
  bool yh1_out = false, slice_code = false;
  for (const CslPartitionOutput& out : csl.written) {
    EXPECT_TRUE(out.check.errors.empty());
    for (const OpCode& op : out.program.ops) {
      nodes.insert(op.node);
      if (op.node == "gru1") {
        EXPECT_EQ(op.lowering, "gru");
        yh1_out = std::count(out.program.host_outputs.begin(), out.program.host_outputs.end(), "Yh1") > 0 ||
                  std::any_of(out.program.ops.begin(), out.program.ops.end(), [](const OpCode& o) { return o.node == "concat"; });
      }
    }
    slice_code |= out.files.at("run.py").find("t['h0_2'] = np.ascontiguousarray(np.asarray(t['h0'])[1:2:1, :, :]") !=
                  std::string::npos;
  }
  for (const Node& n : g.nodes) EXPECT_TRUE(nodes.count(n.name)) << n.name << " is in no generated partition";
  EXPECT_TRUE(yh1_out) << "Y_h of gru1 does not leave its partition";
  EXPECT_TRUE(slice_code);
}

// The device writes the CSL into DeviceConfig.artifacts_dir when it compiles, and says so in its report.
TEST(CslFromMeshPlan, WaferDeviceWritesArtifactsDir) {
  const fs::path dir = fs::temp_directory_path() / ("pfrt_csl_dev_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  DeviceConfig cfg;
  cfg.artifacts_dir = dir.string();
  cfg.options = {{"fabric", "32x32"}};
  auto dev = DeviceRegistry::global().create("wse3", cfg);
  ASSERT_TRUE(dev.ok()) << dev.status().to_string();
  auto exe = (*dev)->compile(tiny_cnn());
  ASSERT_TRUE(exe.ok()) << exe.status().to_string();
  auto report = nlohmann::json::parse((*exe)->report_json());
  ASSERT_TRUE(report.contains("csl")) << report.dump();
  EXPECT_EQ(report["csl"]["failed"].size(), 0u) << report["csl"].dump();
  ASSERT_EQ(report["csl"]["written"].size(), report["partitions"].size());
  for (const auto& p : report["csl"]["written"]) {
    for (const char* f : {"layout.csl", "pe_program.csl", "run.py", "compile.sh"}) {
      EXPECT_TRUE(fs::exists(dir / p.get<std::string>() / f)) << p << "/" << f;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pyflame_rt::csl
