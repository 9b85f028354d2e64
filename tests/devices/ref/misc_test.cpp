// Text, random and training-optimiser kernels.
#include <gtest/gtest.h>

#include <cmath>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/ref_program.h"

namespace pyflame_rt {
namespace {

Expected<std::vector<Value>> run_node(Node node, std::vector<Tensor> inputs, size_t n_out) {
  static const KernelRegistry r = [] { KernelRegistry k; register_misc_kernels(k); return k; }();
  Graph g;
  g.opset_imports[""] = 17;
  g.opset_imports["ai.onnx.preview.training"] = 1;
  std::vector<Value> values;
  for (size_t i = 0; i < inputs.size(); ++i) {
    g.inputs.push_back({"in" + std::to_string(i), inputs[i].dtype(), Shape::unknown_rank()});
    node.inputs.push_back("in" + std::to_string(i));
    values.emplace_back(inputs[i]);
  }
  for (size_t i = 0; i < n_out; ++i) {
    node.outputs.push_back("out" + std::to_string(i));
    g.outputs.push_back({"out" + std::to_string(i), DType::kUndefined, Shape::unknown_rank()});
  }
  g.nodes.push_back(node);
  ASSIGN_OR_RETURN(auto p, RefProgram::build(g, r));
  return p->run(std::move(values));
}

Tensor strings(Dims d, std::vector<std::string> v) {
  Tensor t(DType::kString, d);
  for (size_t i = 0; i < v.size(); ++i) t.data<std::string>()[i] = v[i];
  return t;
}

TEST(MiscTest, StringNormalizerDropsStopwordsCaseInsensitivelyAndUppercases) {
  Node n;
  n.op_type = "StringNormalizer";
  n.attributes["case_change_action"] = Attribute::make_string("UPPER");
  Attribute stop;
  stop.kind = AttrKind::kStrings;
  stop.strings = {"monday"};
  n.attributes["stopwords"] = stop;
  auto out = run_node(n, {strings({1, 3}, {"Monday", "tuesday", "x"})}, 1);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].tensor;
  ASSERT_EQ(y.dims(), (Dims{1, 2}));
  EXPECT_EQ(y.data<std::string>()[0], "TUESDAY");
  EXPECT_EQ(y.data<std::string>()[1], "X");
}

TEST(MiscTest, TfIdfCountsSkipBigrams) {
  // Sequence [94,17,36,12,28] with skip 2 has the bigrams [94,12] and [17,28] (spec example).
  Node n;
  n.op_type = "TfIdfVectorizer";
  n.attributes["mode"] = Attribute::make_string("TF");
  n.attributes["min_gram_length"] = Attribute::make_int(2);
  n.attributes["max_gram_length"] = Attribute::make_int(2);
  n.attributes["max_skip_count"] = Attribute::make_int(2);
  n.attributes["ngram_counts"] = Attribute::make_ints({0, 1});
  n.attributes["ngram_indexes"] = Attribute::make_ints({2, 0, 1});
  n.attributes["pool_int64s"] = Attribute::make_ints({5, 94, 12, 17, 36});
  auto out = run_node(n, {Tensor::from_vector<int64_t>({5}, {94, 17, 36, 12, 28})}, 1);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  const Tensor& y = (*out)[0].tensor;
  ASSERT_EQ(y.dims(), (Dims{3}));
  EXPECT_EQ(y.data<float>()[0], 1.0f);  // [94,12] found with skip 2
  EXPECT_EQ(y.data<float>()[1], 1.0f);  // [17,36] found with skip 0
  EXPECT_EQ(y.data<float>()[2], 0.0f);  // unigram 5 absent
}

TEST(MiscTest, AdagradMatchesFormula) {
  Node n;
  n.op_type = "Adagrad";
  n.domain = "ai.onnx.preview.training";
  n.attributes["norm_coefficient"] = Attribute::make_float(0.001f);
  n.attributes["epsilon"] = Attribute::make_float(1e-5f);
  n.attributes["decay_factor"] = Attribute::make_float(0.1f);
  auto out = run_node(n, {Tensor::scalar<float>(0.1f), Tensor::scalar<int64_t>(1),
                          Tensor::from_vector<float>({1}, {1.0f}), Tensor::from_vector<float>({1}, {-1.0f}),
                          Tensor::from_vector<float>({1}, {2.0f})}, 2);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  double r = 0.1 / (1 + 1 * 0.1), g = 0.001 * 1.0 - 1.0, h = 2.0 + g * g;
  EXPECT_NEAR((*out)[0].tensor.data<float>()[0], 1.0 - r * g / (std::sqrt(h) + 1e-5), 1e-6);
  EXPECT_NEAR((*out)[1].tensor.data<float>()[0], h, 1e-6);
}

TEST(MiscTest, BernoulliExtremesAreDeterministicAndBadProbabilityRejected) {
  Node n;
  n.op_type = "Bernoulli";
  auto out = run_node(n, {Tensor::from_vector<float>({4}, {0, 1, 1, 0})}, 1);
  ASSERT_TRUE(out.ok());
  const float* y = (*out)[0].tensor.data<float>();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 1.0f);
  EXPECT_EQ(y[2], 1.0f);
  auto bad = run_node(n, {Tensor::from_vector<float>({1}, {1.5f})}, 1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("outside [0, 1]"), std::string::npos);
}

TEST(MiscTest, RandomUniformRespectsRangeShapeAndSeed) {
  Node n;
  n.op_type = "RandomUniform";
  n.attributes["shape"] = Attribute::make_ints({3, 5});
  n.attributes["low"] = Attribute::make_float(2.0f);
  n.attributes["high"] = Attribute::make_float(3.0f);
  n.attributes["seed"] = Attribute::make_float(7.0f);
  auto a = run_node(n, {}, 1);
  auto b = run_node(n, {}, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  const Tensor& x = (*a)[0].tensor;
  ASSERT_EQ(x.dims(), (Dims{3, 5}));
  for (int64_t i = 0; i < 15; ++i) {
    EXPECT_GE(x.data<float>()[i], 2.0f);
    EXPECT_LT(x.data<float>()[i], 3.0f);
    EXPECT_EQ(x.data<float>()[i], (*b)[0].tensor.data<float>()[i]);  // same seed, same draws
  }
}

}  // namespace
}  // namespace pyflame_rt
