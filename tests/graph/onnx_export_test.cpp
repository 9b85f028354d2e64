#include "graph/onnx_export.h"

#include <gtest/gtest.h>

#include "graph/onnx_import.h"

namespace pyflame_rt {
namespace {

Graph small_graph() {
  Graph g;
  g.name = "small";
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape({Dim(std::string("batch")), Dim(3)})});
  g.initializers["w"] = Tensor::from_vector<float>({3}, {1.f, 2.f, 3.f});
  g.add_node("Mul", {"x", "w"}, {"m"}, "mul");
  Node& t = g.add_node("Transpose", {"m"}, {"y"}, "t");
  t.attributes["perm"] = Attribute::make_ints({1, 0});
  Node& fused = g.add_node("Relu", {"y"}, {"z"}, "custom");
  fused.domain = "com.example";
  g.outputs.push_back({"z", DType::kFloat32, Shape({Dim(3), Dim(std::string("batch"))})});
  return g;
}

TEST(OnnxExportTest, ExportedModelImportsToTheSameGraph) {
  Graph g = small_graph();
  ModelMetadata meta;
  meta.domain = "org.example";
  meta.version = 4;
  meta.custom_metadata_map["k"] = "v";
  auto bytes = export_onnx_bytes(g, meta);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  ModelMetadata back;
  auto again = import_onnx_bytes(*bytes, "", &back);
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(print_graph(*again), print_graph(g));
  EXPECT_EQ(back.producer_name, "pyflame_rt");
  EXPECT_EQ(back.domain, "org.example");
  EXPECT_EQ(back.version, 4);
  EXPECT_EQ(back.custom_metadata_map.at("k"), "v");
  EXPECT_EQ(again->opset("com.example"), 1);  // custom domains are declared
}

}  // namespace
}  // namespace pyflame_rt
