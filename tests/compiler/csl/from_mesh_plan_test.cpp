// The wafer's placed plan as CSL: a small CNN (Conv, Relu, MaxPool, GlobalAveragePool, Flatten,
// Gemm, Softmax) placed by devices/wse/placement, every partition generated and checked.
#include <gtest/gtest.h>

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
