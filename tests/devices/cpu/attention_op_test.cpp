// The native MultiHeadAttention kernel against its reference kernel: both layouts, unequal
// query/key lengths and widths, broadcast masks, one and several threads.
#include <gtest/gtest.h>

#include <cmath>

#include "devices/ref/ref_device.h"
#include "devices/cpu/cpu_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

struct AttentionCase {
  bool batch_first;
  int64_t batch, q_len, kv_len, heads, width, v_width;
  Dims mask;  // empty: no mask
  int threads;
};

std::string describe(const AttentionCase& c) {
  return std::string(c.batch_first ? "batch_first" : "seq_first") + " B=" + std::to_string(c.batch) +
         " L=" + std::to_string(c.q_len) + " S=" + std::to_string(c.kv_len) + " H=" + std::to_string(c.heads) +
         " E=" + std::to_string(c.width) + " Ev=" + std::to_string(c.v_width) + " mask=" +
         (c.mask.empty() ? "none" : dims_to_string(c.mask)) + " threads=" + std::to_string(c.threads);
}

void check(const AttentionCase& c, uint32_t seed) {
  auto operand = [&](int64_t len, int64_t width) {
    return c.batch_first ? Dims{c.batch, len, width} : Dims{len, c.batch, width};
  };
  Graph g;
  g.opset_imports[""] = 13;
  g.opset_imports["pyflame_rt"] = 1;
  Node& n = g.add_node("MultiHeadAttention", {"q", "k", "v"}, {"y"}, "attention");
  n.domain = "pyflame_rt";
  n.attributes["num_heads"] = Attribute::make_int(c.heads);
  n.attributes["scale"] = Attribute::make_float(1.0f / std::sqrt(static_cast<float>(c.width / c.heads)));
  n.attributes["batch_first"] = Attribute::make_int(c.batch_first ? 1 : 0);
  std::vector<Value> feeds = {Value(random_tensor(operand(c.q_len, c.width), seed)),
                              Value(random_tensor(operand(c.kv_len, c.width), seed + 1)),
                              Value(random_tensor(operand(c.kv_len, c.v_width), seed + 2))};
  if (!c.mask.empty()) {
    n.inputs.push_back("mask");
    feeds.emplace_back(random_tensor(c.mask, seed + 3));
  }
  for (size_t i = 0; i < feeds.size(); ++i) {
    g.inputs.push_back({n.inputs[i], DType::kFloat32, Shape::from_dims(feeds[i].tensor.dims())});
  }
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  auto cpu = make_cpu_device(c.threads)->compile(g);
  auto ref = make_ref_device()->compile(g);
  ASSERT_TRUE(cpu.ok() && ref.ok()) << describe(c);
  EXPECT_TRUE((*cpu)->fallback_nodes().empty()) << describe(c) << ": ran on the reference kernel";
  auto a = (*cpu)->run(feeds);
  auto b = (*ref)->run(feeds);
  ASSERT_TRUE(a.ok()) << describe(c) << ": " << a.status().to_string();
  ASSERT_TRUE(b.ok()) << describe(c) << ": " << b.status().to_string();
  const Tensor& ta = (*a)[0].tensor;
  const Tensor& tb = (*b)[0].tensor;
  ASSERT_EQ(ta.dims(), tb.dims()) << describe(c);
  double err = 0;
  for (int64_t i = 0; i < tb.numel(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(ta.data<float>()[i]) - tb.data<float>()[i]));
  }
  EXPECT_LT(err, 1e-5) << describe(c);
}

TEST(AttentionOpTest, MatchesTheReferenceKernel) {
  const std::vector<AttentionCase> cases = {
      {true, 2, 5, 7, 2, 6, 6, {}, 1},
      {true, 3, 17, 9, 4, 32, 16, {}, 2},               // V narrower than Q/K
      {false, 1, 128, 128, 4, 256, 256, {}, 2},         // the encoder's shape (torch's layout)
      {false, 2, 6, 11, 3, 12, 9, {6, 11}, 2},          // [L, S] mask
      {true, 2, 4, 5, 2, 8, 8, {2, 1, 4, 5}, 1},        // per-batch mask, shared by heads
      {true, 2, 4, 5, 2, 8, 8, {2, 1, 1, 5}, 2},        // key padding mask
      {false, 3, 1, 1, 1, 4, 4, {1}, 2},                // single query and key
      // Long keys: query rows in blocks (attention_op.cpp kScoreBlockFloats, kItemMacs), the
      // last one short, each block reading its own rows of a per-row mask.
      {true, 2, 40, 4096, 2, 16, 16, {2, 1, 40, 4096}, 2},  // blocks of 16, 16 and 8 rows
      {false, 1, 33, 2048, 1, 64, 64, {33, 2048}, 1},       // blocks of 16, 16 and 1 row
  };
  uint32_t seed = 100;
  for (const auto& c : cases) check(c, seed += 10);
}

TEST(AttentionOpTest, ShapeErrorsNameTheNodeAndTheShapes) {
  Graph g;
  g.opset_imports["pyflame_rt"] = 1;
  Node& n = g.add_node("MultiHeadAttention", {"q", "k", "v"}, {"y"}, "attention");
  n.domain = "pyflame_rt";
  n.attributes["num_heads"] = Attribute::make_int(3);
  for (const char* name : {"q", "k", "v"}) g.inputs.push_back({name, DType::kFloat32, Shape::from_dims({1, 2, 4})});
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  auto cpu = make_cpu_device(1)->compile(g);
  ASSERT_TRUE(cpu.ok());
  Tensor x = random_tensor({1, 2, 4}, 1);
  auto r = (*cpu)->run({Value(x), Value(x), Value(x)});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().to_string().find("attention"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().to_string().find("num_heads 3"), std::string::npos) << r.status().to_string();
}

}  // namespace
}  // namespace pyflame_rt
