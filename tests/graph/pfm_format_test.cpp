#include "graph/pfm_format.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>

namespace pyflame_rt {
namespace {

Graph every_kind_graph() {
  auto body = std::make_shared<Graph>();
  body->name = "body";
  body->inputs.push_back({"b_in", DType::kFloat32, Shape::from_dims({2})});
  body->add_node("Relu", {"b_in"}, {"b_out"}, "inner");
  body->outputs.push_back({"b_out", DType::kFloat32, Shape::from_dims({2})});

  Graph g;
  g.name = "everything";
  g.opset_imports[""] = 17;
  g.opset_imports["com.example"] = 2;
  Shape sym;
  sym.dims = {Dim(std::string("batch")), Dim(3), Dim()};
  g.inputs.push_back({"x", DType::kFloat32, sym});
  g.initializers["w"] = Tensor::from_vector<float>({2, 2}, {1.5f, -2.0f, 3.25f, 0.0f});
  Tensor names(DType::kString, {2});
  names.data<std::string>()[0] = "alpha";
  names.data<std::string>()[1] = std::string("b\0c", 3);
  g.initializers["names"] = names;
  g.overridable_initializers.insert("w");
  Node& n = g.add_node("Custom", {"x", "", "w"}, {"y"}, "all_attrs");
  n.domain = "com.example";
  n.attributes["f"] = Attribute::make_float(0.5f);
  n.attributes["i"] = Attribute::make_int(-7);
  n.attributes["s"] = Attribute::make_string("text");
  n.attributes["t"] = Attribute::make_tensor(Tensor::from_vector<int64_t>({3}, {1, 2, 3}));
  n.attributes["g"] = Attribute::make_graph(body);
  n.attributes["fs"] = Attribute::make_floats({1.0f, 2.5f});
  n.attributes["is"] = Attribute::make_ints({4, 5, 6});
  Attribute ss;
  ss.kind = AttrKind::kStrings;
  ss.strings = {"a", "bb"};
  n.attributes["ss"] = ss;
  Attribute ts;
  ts.kind = AttrKind::kTensors;
  ts.tensors = {Tensor::from_vector<double>({1}, {2.5}), Tensor::from_vector<bool>({2}, {true, false})};
  n.attributes["ts"] = ts;
  Attribute gs;
  gs.kind = AttrKind::kGraphs;
  gs.graphs = {body, body};
  n.attributes["gs"] = gs;
  g.outputs.push_back({"y", DType::kFloat16, Shape::unknown_rank()});
  g.value_info["x"] = {"x", DType::kFloat32, sym};
  return g;
}

TEST(PfmFormatTest, RoundTripKeepsEverything) {
  Graph g = every_kind_graph();
  auto bytes = serialize_pfm(g);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  EXPECT_TRUE(is_pfm_bytes(*bytes));
  auto back = load_pfm_bytes(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(print_graph(*back), print_graph(g));
  EXPECT_EQ(back->inputs[0].shape.to_string(), "[batch,3,?]");
  EXPECT_EQ(back->outputs[0].dtype, DType::kFloat16);
  EXPECT_FALSE(back->outputs[0].shape.rank_known);
  EXPECT_EQ(back->overridable_initializers.count("w"), 1u);
  EXPECT_EQ(back->opset("com.example"), 2);
  const Tensor& w = back->initializers.at("w");
  EXPECT_EQ(std::memcmp(w.raw_data(), g.initializers.at("w").raw_data(), w.nbytes()), 0);
  EXPECT_EQ(back->initializers.at("names").data<std::string>()[1], std::string("b\0c", 3));
  const Node& n = back->nodes[0];
  EXPECT_EQ(n.attr_graph("g")->nodes[0].name, "inner");
  EXPECT_EQ(n.attr("gs")->graphs.size(), 2u);
  EXPECT_EQ(n.attr("ts")->tensors[1].data<bool>()[0], true);
  EXPECT_EQ(n.inputs[1], "");
}

TEST(PfmFormatTest, SaveIsAtomicAndLoadsFromFile) {
  std::string path = ::testing::TempDir() + "/roundtrip.pfm";
  ASSERT_TRUE(save_pfm(every_kind_graph(), path).ok());
  auto back = load_pfm_file(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->name, "everything");
  std::ifstream leftover(path + ".tmp" + std::to_string(::getpid()));
  EXPECT_FALSE(leftover.good());
  std::remove(path.c_str());
}

TEST(PfmFormatTest, CorruptAndTruncatedFilesAreInvalidProtobuf) {
  auto bytes = serialize_pfm(every_kind_graph());
  ASSERT_TRUE(bytes.ok());
  auto truncated = load_pfm_bytes(bytes->substr(0, bytes->size() / 2));
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), StatusCode::kInvalidProtobuf);
  auto not_pfm = load_pfm_bytes("hello world, not a model");
  ASSERT_FALSE(not_pfm.ok());
  EXPECT_EQ(not_pfm.status().code(), StatusCode::kInvalidProtobuf);
  auto missing = load_pfm_file("/no/such/model.pfm");
  EXPECT_EQ(missing.status().code(), StatusCode::kNoSuchFile);
}

TEST(PfmFormatTest, NewerFormatVersionIsRejectedWithBothVersions) {
  auto bytes = serialize_pfm(every_kind_graph());
  ASSERT_TRUE(bytes.ok());
  // format_version is field 1 (varint): tag 0x08 right after the magic, then the value.
  std::string b = *bytes;
  ASSERT_EQ(static_cast<unsigned char>(b[8]), 0x08);
  b[9] = 9;
  auto newer = load_pfm_bytes(b);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kNotImplemented);
  EXPECT_NE(newer.status().message().find("version 9"), std::string::npos);
}

// A .pfm file is untrusted as an ONNX file is: a default-domain node given a type its ONNX
// schema does not allow (Relu on int32 at opset 13), also inside a subgraph, or one type
// parameter bound to two types (Add of float and double), is refused at load as the ONNX
// importer refuses it, naming node, input, allowed and received types; the same graph with
// allowed types loads.
TEST(PfmFormatTest, TypeConstraintsAreCheckedAtLoad) {
  auto relu_of = [](DType dtype) {
    Graph g;
    g.name = "typed";
    g.opset_imports[""] = 13;
    g.inputs.push_back({"x", dtype, Shape::from_dims({2})});
    g.add_node("Relu", {"x"}, {"y"}, "relu");
    g.outputs.push_back({"y", dtype, Shape::from_dims({2})});
    return g;
  };
  auto load = [](const Graph& g) { return load_pfm_bytes(*serialize_pfm(g)); };
  ASSERT_TRUE(load(relu_of(DType::kFloat32)).ok());
  auto bad = load(relu_of(DType::kInt32));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidGraph);
  EXPECT_NE(bad.status().message().find("node 'relu' (Relu, opset 13): input 0 'x' (X) has type tensor(int32); Relu allows "
                                        "for its type parameter T only tensor(bfloat16), tensor(double), tensor(float), "
                                        "tensor(float16)"),
            std::string::npos)
      << bad.status().to_string();

  Graph outer = relu_of(DType::kFloat32);  // the int32 Relu inside an If's branch
  auto branch = std::make_shared<Graph>(relu_of(DType::kInt32));
  branch->opset_imports.clear();
  outer.inputs.push_back({"c", DType::kBool, Shape::from_dims({})});
  Node& if_node = outer.add_node("If", {"c"}, {"z"}, "if");
  if_node.attributes["then_branch"] = Attribute::make_graph(branch);
  if_node.attributes["else_branch"] = Attribute::make_graph(branch);
  outer.outputs.push_back({"z", DType::kInt32, Shape::unknown_rank()});
  auto nested = load(outer);
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.status().message().find("node 'relu' (Relu, opset 13): input 0 'x'"), std::string::npos)
      << nested.status().to_string();

  Graph mixed;
  mixed.name = "mixed";
  mixed.opset_imports[""] = 14;
  mixed.inputs.push_back({"a", DType::kFloat32, Shape::from_dims({2})});
  mixed.initializers["b"] = Tensor::from_vector<double>({2}, {1, 2});
  mixed.add_node("Add", {"a", "b"}, {"s"}, "add");
  mixed.outputs.push_back({"s", DType::kFloat32, Shape::from_dims({2})});
  auto two = load(mixed);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("type parameter T is bound to tensor(float) by input 0 'a' and to tensor(double) "
                                        "by input 1 'b'"),
            std::string::npos)
      << two.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt
