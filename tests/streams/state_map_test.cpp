#include "streams/state_map.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace {

ValueInfo info(const std::string& name, Dims dims, DType dt = DType::kFloat32) {
  return {name, dt, Shape::from_dims(dims)};
}

TEST(StateMapTest, DetectsRecurrentPairsFromNamesAndShapes) {
  std::vector<ValueInfo> in{info("input", {1, 50, 64}), info("h0", {2, 1, 128}), info("state_in", {1, 4})};
  std::vector<ValueInfo> out{info("output", {1, 50, 128}), info("hn", {2, 1, 128}), info("state_out", {1, 4})};
  auto pairs = find_state_pairs(in, out, {});
  ASSERT_TRUE(pairs.ok()) << pairs.status().to_string();
  ASSERT_EQ(pairs.value().size(), 2u);
  EXPECT_EQ(pairs.value()[0].input, "h0");
  EXPECT_EQ(pairs.value()[0].output, "hn");
  EXPECT_EQ(pairs.value()[1].input, "state_in");
  EXPECT_EQ(pairs.value()[1].output, "state_out");
}

TEST(StateMapTest, ShapeMismatchIsNotAPair) {
  std::vector<ValueInfo> in{info("x", {1, 8}), info("h", {1, 16})};
  std::vector<ValueInfo> out{info("y", {1, 8}), info("h_out", {1, 32})};
  auto pairs = find_state_pairs(in, out, {});
  ASSERT_TRUE(pairs.ok());
  EXPECT_TRUE(pairs.value().empty());
}

TEST(StateMapTest, GivenMappingIsCheckedAndNamesTheModelsValues) {
  std::vector<ValueInfo> in{info("x", {1, 8}), info("mem", {1, 16})};
  std::vector<ValueInfo> out{info("y", {1, 8}), info("next", {1, 16}), info("wrong", {1, 3})};
  auto ok = find_state_pairs(in, out, {{"mem", "next"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value()[0].output, "next");
  auto unknown = find_state_pairs(in, out, {{"mem", "nope"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("'nope'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("'next'"), std::string::npos);
  auto bad = find_state_pairs(in, out, {{"mem", "wrong"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("[1,16]"), std::string::npos);
  EXPECT_NE(bad.status().message().find("[1,3]"), std::string::npos);
}

TEST(StateMapTest, AmbiguousDetectionAsksForAMapping) {
  std::vector<ValueInfo> in{info("h", {1, 4})};
  std::vector<ValueInfo> out{info("h_out", {1, 4}), info("h_next", {1, 4})};
  auto pairs = find_state_pairs(in, out, {});
  ASSERT_FALSE(pairs.ok());
  EXPECT_NE(pairs.status().message().find("state_map"), std::string::npos);
  EXPECT_NE(pairs.status().message().find("'h' <- 'h_out', 'h' <- 'h_next'"), std::string::npos)
      << pairs.status().message();
}

// torch.onnx.export names the outputs of a GRU "output" and "output1": only dtype and shape tell.
TEST(StateMapTest, PairsByShapeWhenNamesDoNotTell) {
  std::vector<ValueInfo> in{info("x", {1, 50, 64}), info("h", {2, 1, 128})};
  std::vector<ValueInfo> out{info("output", {1, 50, 128}), info("output1", {2, 1, 128})};
  auto pairs = find_state_pairs(in, out, {});
  ASSERT_TRUE(pairs.ok()) << pairs.status().to_string();
  ASSERT_EQ(pairs.value().size(), 1u);
  EXPECT_EQ(pairs.value()[0].input, "h");
  EXPECT_EQ(pairs.value()[0].output, "output1");
}

TEST(StateMapTest, ShapeOnlyAmbiguityListsThePairsConsidered) {
  std::vector<ValueInfo> in{info("x", {1, 50, 64}), info("a", {1, 16}), info("b", {1, 16})};
  std::vector<ValueInfo> out{info("y", {1, 50, 64}), info("p", {1, 16}), info("q", {1, 16})};
  auto pairs = find_state_pairs(in, out, {});
  ASSERT_FALSE(pairs.ok());
  const std::string& m = pairs.status().message();
  EXPECT_NE(m.find("'a' <- 'p', 'a' <- 'q', 'b' <- 'p', 'b' <- 'q'"), std::string::npos) << m;
  EXPECT_EQ(m.find("'x' <- 'y'"), std::string::npos) << m;  // the data path is never a candidate
  EXPECT_NE(m.find("state_map"), std::string::npos) << m;
}

}  // namespace
}  // namespace pyflame_rt
