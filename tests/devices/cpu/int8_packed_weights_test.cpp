// Packed int8 weights (devices/packed_weights.h) of the native int8 ops: a CPU program's
// QLinearConv (dense with an activation zero point, so oneDNN appends its compensation to the
// weights; depthwise) and QLinearMatMul weights, handed to a new program of the same graph, give
// bit-identical outputs without packing again (packed_weights_used_count counts each blob
// taken); blobs from another machine, cut short or packed for another kernel are packed again
// (counted as stale), with the same outputs.
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/packed_weights.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

Node make_node(const std::string& op, const std::string& name, std::vector<std::string> in,
               std::vector<std::string> out) {
  Node n;
  n.op_type = op;
  n.name = name;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  return n;
}

Tensor per_channel_scales(int64_t n, float base) {
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base * (1.f + 0.01f * static_cast<float>(i % 7));
  return Tensor::from_vector<float>({n}, v);
}

// x u8 [1,16,14,14] (zero point 128) -> QLinearConv 3x3, 32 channels, per-channel scales, bias
// -> QLinearConv depthwise 3x3 (zero point 0) -> y; a u8 [8,24] -> QLinearMatMul [24,40] -> z.
Graph int8_graph() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kUInt8, Shape::from_dims({1, 16, 14, 14})});
  g.inputs.push_back({"a", DType::kUInt8, Shape::from_dims({8, 24})});
  auto& init = g.initializers;
  init["xs"] = Tensor::scalar<float>(0.05f);
  init["xz"] = Tensor::scalar<uint8_t>(128);
  init["w1"] = random_ints<int8_t>({32, 16, 3, 3}, -127, 127, 1);
  init["w1s"] = per_channel_scales(32, 0.004f);
  init["w1z"] = Tensor::scalar<int8_t>(0);
  init["c1s"] = Tensor::scalar<float>(0.6f);
  init["c1z"] = Tensor::scalar<uint8_t>(0);
  init["b1"] = random_ints<int32_t>({32}, -2000, 2000, 2);
  init["w2"] = random_ints<int8_t>({32, 1, 3, 3}, -127, 127, 3);
  init["w2s"] = per_channel_scales(32, 0.01f);
  init["ys"] = Tensor::scalar<float>(0.5f);
  init["yz"] = Tensor::scalar<uint8_t>(0);
  init["as"] = Tensor::scalar<float>(0.02f);
  init["az"] = Tensor::scalar<uint8_t>(100);
  init["wm"] = random_ints<int8_t>({24, 40}, -127, 127, 4);
  init["wms"] = per_channel_scales(40, 0.003f);
  init["zs"] = Tensor::scalar<float>(0.1f);
  init["zz"] = Tensor::scalar<uint8_t>(120);
  Node c1 = make_node("QLinearConv", "conv", {"x", "xs", "xz", "w1", "w1s", "w1z", "c1s", "c1z", "b1"}, {"c1"});
  c1.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  Node dw = make_node("QLinearConv", "dw", {"c1", "c1s", "c1z", "w2", "w2s", "w1z", "ys", "yz"}, {"y"});
  dw.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  dw.attributes["group"] = Attribute::make_int(32);
  Node mm = make_node("QLinearMatMul", "mm", {"a", "as", "az", "wm", "wms", "w1z", "zs", "zz"}, {"z"});
  g.nodes = {c1, dw, mm};
  g.outputs = {{"y", DType::kUInt8, Shape::from_dims({1, 32, 14, 14})}, {"z", DType::kUInt8, Shape::from_dims({8, 40})}};
  return g;
}

std::vector<Value> feeds() {
  return {Value(random_ints<uint8_t>({1, 16, 14, 14}, 0, 255, 10)), Value(random_ints<uint8_t>({8, 24}, 0, 255, 11))};
}

std::unique_ptr<cpu::CpuProgram> build(const Graph& g, std::shared_ptr<const PackedWeights> packed) {
  auto p = cpu::CpuProgram::build(g, CpuDeviceOptions{}, std::move(packed));
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : nullptr;
}

void expect_identical(const std::vector<Value>& a, const std::vector<Value>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].tensor.dtype(), b[i].tensor.dtype()) << "output " << i;
    ASSERT_EQ(a[i].tensor.dims(), b[i].tensor.dims()) << "output " << i;
    EXPECT_EQ(std::memcmp(a[i].tensor.raw_data(), b[i].tensor.raw_data(), a[i].tensor.nbytes()), 0)
        << "output " << i << " differs";
  }
}

struct Fresh {
  std::vector<Value> out;
  PackedWeights packed;
};

Fresh fresh_run(const Graph& g) {
  Fresh f;
  auto p = build(g, nullptr);
  auto out = p->run(feeds());
  EXPECT_TRUE(out.ok()) << out.status().to_string();
  f.out = std::move(out).value();
  EXPECT_TRUE(p->export_packed(&f.packed).ok());
  for (const auto& [node, native] : p->native_by_node()) EXPECT_TRUE(native) << node << " ran the reference kernel";
  return f;
}

TEST(Int8PackedWeightsTest, ExportsEveryInt8ConvAndMatmul) {
  Fresh f = fresh_run(int8_graph());
  EXPECT_EQ(f.packed.validity, packed_weights_validity());
  std::map<std::string, PackedBlob> by_node;
  for (const auto& b : f.packed.blobs) by_node[b.node] = b;
  ASSERT_EQ(by_node.size(), 3u);
  EXPECT_EQ(by_node["conv"].key, (Dims{1, 16, 14, 14}));
  EXPECT_EQ(by_node["dw"].key, (Dims{1, 32, 14, 14}));
  EXPECT_EQ(by_node["mm"].key, (Dims{8, 24, 40}));
  for (const auto& [name, b] : by_node) {
    EXPECT_EQ(b.kind, "dnnl") << name;
    EXPECT_FALSE(b.impl.empty()) << name;
  }
  // s8 weights, at least one byte per weight (blocking pads; the dense conv's blob also
  // holds oneDNN's compensation for the activations' zero point).
  EXPECT_GE(by_node["conv"].data.nbytes(), 32u * 16 * 9);
  EXPECT_GE(by_node["dw"].data.nbytes(), 32u * 9);
  EXPECT_GE(by_node["mm"].data.nbytes(), 24u * 40);
}

TEST(Int8PackedWeightsTest, RoundTripIsBitIdenticalWithoutPacking) {
  Graph g = int8_graph();
  Fresh f = fresh_run(g);
  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto p = build(g, std::make_shared<const PackedWeights>(f.packed));
  // build() made the plans of the blobs' keys already, from the blobs: no reorder.
  EXPECT_EQ(packed_weights_used_count() - used, f.packed.blobs.size());
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
  EXPECT_EQ(packed_weights_used_count() - used, f.packed.blobs.size());  // the run packed nothing either
  EXPECT_EQ(packed_weights_stale_count(), stale);
  for (const auto& [node, native] : p->native_by_node()) EXPECT_TRUE(native) << node;
  // The imported program exports the same bytes again (a plan rewritten from a hit is the same).
  PackedWeights again;
  ASSERT_TRUE(p->export_packed(&again).ok());
  ASSERT_EQ(again.blobs.size(), f.packed.blobs.size());
  for (const auto& b : again.blobs) {
    bool found = false;
    for (const auto& o : f.packed.blobs) {
      if (o.node != b.node) continue;
      found = true;
      ASSERT_EQ(o.data.nbytes(), b.data.nbytes()) << b.node;
      EXPECT_EQ(std::memcmp(o.data.raw_data(), b.data.raw_data(), o.data.nbytes()), 0) << b.node;
      EXPECT_EQ(o.desc, b.desc) << b.node;
    }
    EXPECT_TRUE(found) << b.node;
  }
}

TEST(Int8PackedWeightsTest, ForeignMachineRepacks) {
  Graph g = int8_graph();
  Fresh f = fresh_run(g);
  PackedWeights foreign = f.packed;
  foreign.validity = "onednn=2.6.3/N/A;isa=0x1;cpu=avx2,fma,";
  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto p = build(g, std::make_shared<const PackedWeights>(foreign));
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
  EXPECT_EQ(packed_weights_used_count(), used);
  EXPECT_GT(packed_weights_stale_count(), stale);
}

TEST(Int8PackedWeightsTest, TruncatedOrMislabelledBlobRepacks) {
  Graph g = int8_graph();
  Fresh f = fresh_run(g);
  PackedWeights bad = f.packed;
  for (size_t i = 0; i < bad.blobs.size(); ++i) {
    PackedBlob& b = bad.blobs[i];
    if (i % 2 == 0) {
      Tensor cut(DType::kUInt8, {static_cast<int64_t>(b.data.nbytes() - 1)});
      std::memcpy(cut.raw_data(), b.data.raw_data(), cut.nbytes());
      b.data = cut;
    } else {
      b.impl = "jit_int8:sse41";  // packed for another kernel
    }
  }
  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto p = build(g, std::make_shared<const PackedWeights>(bad));
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
  EXPECT_EQ(packed_weights_used_count(), used);
  EXPECT_EQ(packed_weights_stale_count() - stale, bad.blobs.size());
}

}  // namespace
}  // namespace pyflame_rt
