// Packed weights (devices/packed_weights.h): a CPU program's packed conv (direct and Winograd)
// and matmul/Gemm weights, handed to a new program of the same graph, give bit-identical
// outputs without packing again; blobs from another machine or oneDNN, or cut short, are
// packed again (and counted as stale), with the same outputs.
#include <gtest/gtest.h>

#include <cstring>

#include "devices/cpu/cpu_device.h"
#include "devices/cpu/cpu_program.h"
#include "devices/cpu/winograd_conv.h"
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

// x [1,32,28,28] -> 3x3 stride-1 conv (Winograd where oneDNN has it) -> 3x3 stride-2 conv
// (direct) -> Flatten -> Gemm (transB, bias); a [32,24] -> MatMul with constant [24,40].
Graph test_graph() {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims({1, 32, 28, 28})});
  g.inputs.push_back({"a", DType::kFloat32, Shape::from_dims({32, 24})});
  g.initializers["w1"] = random_tensor({32, 32, 3, 3}, 1);
  g.initializers["b1"] = random_tensor({32}, 2);
  g.initializers["w2"] = random_tensor({16, 32, 3, 3}, 3);
  g.initializers["wg"] = random_tensor({10, 16 * 14 * 14}, 4);
  g.initializers["bg"] = random_tensor({10}, 5);
  g.initializers["wm"] = random_tensor({24, 40}, 6);
  Node c1 = make_node("Conv", "wino", {"x", "w1", "b1"}, {"c1"});
  c1.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  Node c2 = make_node("Conv", "direct", {"c1", "w2"}, {"c2"});
  c2.attributes["pads"] = Attribute::make_ints({1, 1, 1, 1});
  c2.attributes["strides"] = Attribute::make_ints({2, 2});
  Node gemm = make_node("Gemm", "gemm", {"f", "wg", "bg"}, {"y"});
  gemm.attributes["transB"] = Attribute::make_int(1);
  g.nodes = {c1, c2, make_node("Flatten", "flatten", {"c2"}, {"f"}), gemm,
             make_node("MatMul", "matmul", {"a", "wm"}, {"z"})};
  g.outputs = {{"y", DType::kFloat32, Shape::from_dims({1, 10})}, {"z", DType::kFloat32, Shape::from_dims({32, 40})}};
  return g;
}

std::vector<Value> feeds() { return {Value(random_tensor({1, 32, 28, 28}, 10)), Value(random_tensor({32, 24}, 11))}; }

std::unique_ptr<cpu::CpuProgram> build(const Graph& g, std::shared_ptr<const PackedWeights> packed) {
  auto p = cpu::CpuProgram::build(g, CpuDeviceOptions{}, std::move(packed));
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? std::move(p).value() : nullptr;
}

void expect_identical(const std::vector<Value>& a, const std::vector<Value>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
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
  return f;
}

TEST(PackedWeightsTest, ExportsEveryConvAndMatmul) {
  Fresh f = fresh_run(test_graph());
  EXPECT_EQ(f.packed.validity, packed_weights_validity());
  std::map<std::string, PackedBlob> by_node;
  for (const auto& b : f.packed.blobs) by_node[b.node] = b;
  // wino, direct, matmul. Flatten packs nothing, nor does the Gemm: one row times [3136, 10]
  // runs on our rows kernel (matmul_op.cpp's small_product), which packs its panels on first use.
  ASSERT_EQ(by_node.size(), 3u);
  EXPECT_EQ(by_node["wino"].key, (Dims{1, 32, 28, 28}));
  EXPECT_EQ(by_node["direct"].key, (Dims{1, 32, 28, 28}));
  EXPECT_EQ(by_node.count("gemm"), 0u);
  EXPECT_EQ(by_node["matmul"].key, (Dims{32, 24, 24, 40}));
  for (const auto& [name, b] : by_node) {
    EXPECT_GT(b.data.nbytes(), 0u) << name;
    EXPECT_FALSE(b.impl.empty()) << name;
  }
}

TEST(PackedWeightsTest, RoundTripIsBitIdenticalWithoutPacking) {
  Graph g = test_graph();
  Fresh f = fresh_run(g);
  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto p = build(g, std::make_shared<const PackedWeights>(f.packed));
  // build() made the plans of the blobs' shapes already, from the blobs.
  EXPECT_EQ(packed_weights_used_count() - used, f.packed.blobs.size());
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
  EXPECT_EQ(packed_weights_used_count() - used, f.packed.blobs.size());
  EXPECT_EQ(packed_weights_stale_count(), stale);
  // Every node still runs its native kernel.
  for (const auto& [node, native] : p->native_by_node()) EXPECT_TRUE(native || node == "flatten") << node;
}

// With our AVX-512 Winograd asked for (off by default: it rounds worse than oneDNN's, see
// conv_op.cpp), the 28x28 conv packs and reloads its transformed weights bit for bit too. The
// setting is read when each conv op is made.
TEST(PackedWeightsTest, RoundTripWithOurAvx512WinogradIsBitIdentical) {
  if (!cpu::WinogradConv::cpu_supported(16)) GTEST_SKIP() << "no AVX-512 on this CPU";
  setenv("PFRT_WINOGRAD16_MIN_AREA", "784", 1);
  Graph g = test_graph();
  Fresh f = fresh_run(g);
  auto p = build(g, std::make_shared<const PackedWeights>(f.packed));
  unsetenv("PFRT_WINOGRAD16_MIN_AREA");
  bool ours = false;
  for (const auto& b : f.packed.blobs) ours = ours || (b.node == "wino" && b.kind == "winograd");
  EXPECT_TRUE(ours) << "the 28x28 conv ran our Winograd";
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
}

// Winograd weights transformed on the first version's points (0, +-1, +-2: a plan file written
// before the change to 0, 1, -1, 1/2, -2) are the same size but not the same numbers: the blob's
// impl says so, and the conv transforms its weights again instead of computing garbage.
TEST(PackedWeightsTest, WinogradBlobOfOtherPointsRepacks) {
  if (!cpu::WinogradConv::cpu_supported(16)) GTEST_SKIP() << "no AVX-512 on this CPU";
  setenv("PFRT_WINOGRAD16_MIN_AREA", "784", 1);
  Graph g = test_graph();
  Fresh f = fresh_run(g);
  PackedWeights old = f.packed;
  size_t relabelled = 0;
  for (auto& b : old.blobs) {
    if (b.kind != "winograd") continue;
    EXPECT_EQ(b.impl, cpu::WinogradConv::kPackedImpl);
    b.impl = "pyflame_rt-winograd-f4x4";
    ++relabelled;
  }
  ASSERT_EQ(relabelled, 1u);
  uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
  auto p = build(g, std::make_shared<const PackedWeights>(old));
  unsetenv("PFRT_WINOGRAD16_MIN_AREA");
  auto out = p->run(feeds());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  expect_identical(*out, f.out);
  EXPECT_EQ(packed_weights_used_count() - used, old.blobs.size() - 1);
  EXPECT_EQ(packed_weights_stale_count() - stale, 1u);
}

TEST(PackedWeightsTest, ForeignMachineOrOneDnnRepacks) {
  Graph g = test_graph();
  Fresh f = fresh_run(g);
  for (std::string validity : {std::string("onednn=2.5.0/abc;") + packed_weights_validity().substr(
                                   packed_weights_validity().find(";isa=") + 1),
                               std::string("onednn=2.6.3/N/A;isa=0x1;cpu=avx2,fma,")}) {
    PackedWeights foreign = f.packed;
    foreign.validity = validity;
    uint64_t used = packed_weights_used_count(), stale = packed_weights_stale_count();
    auto p = build(g, std::make_shared<const PackedWeights>(foreign));
    auto out = p->run(feeds());
    ASSERT_TRUE(out.ok()) << out.status().to_string();
    expect_identical(*out, f.out);
    EXPECT_EQ(packed_weights_used_count(), used) << validity;
    EXPECT_GT(packed_weights_stale_count(), stale) << validity;
  }
}

TEST(PackedWeightsTest, TruncatedOrMislabelledBlobRepacks) {
  Graph g = test_graph();
  Fresh f = fresh_run(g);
  PackedWeights bad = f.packed;
  for (size_t i = 0; i < bad.blobs.size(); ++i) {
    PackedBlob& b = bad.blobs[i];
    if (i % 2 == 0) {
      Tensor cut(DType::kUInt8, {static_cast<int64_t>(b.data.nbytes() / 2)});
      std::memcpy(cut.raw_data(), b.data.raw_data(), cut.nbytes());
      b.data = cut;
    } else {
      b.impl = "jit:sse41";  // packed for another kernel
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

TEST(PackedWeightsTest, OwnWinogradFromPackedBytesIsBitIdentical) {
  if (!cpu::WinogradConv::cpu_supported()) GTEST_SKIP() << "no AVX2/FMA on this CPU";
  Tensor w = random_tensor({24, 16, 3, 3}, 20), b = random_tensor({24}, 21);
  cpu::WinogradConv made(w, b, true);
  auto again = cpu::WinogradConv::from_packed(made.packed_bytes(), 16, 24, b, true);
  ASSERT_NE(again, nullptr);
  cpu::WinogradConv::Geometry geo{1, 12, 12, 1, 1, 12, 12};
  Tensor x = random_tensor({1, 16, 12, 12}, 22);  // any bytes: both read the same nChw8c input
  std::vector<float> y1(24 * 144), y2(24 * 144);
  made.run(x.data<float>(), y1.data(), geo);
  again->run(x.data<float>(), y2.data(), geo);
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0);
  // Bytes of another size (cut short, or for other channels) are refused.
  Tensor cut(DType::kUInt8, {static_cast<int64_t>(made.packed_bytes().nbytes() - 64)});
  EXPECT_EQ(cpu::WinogradConv::from_packed(cut, 16, 24, b, true), nullptr);
  EXPECT_EQ(cpu::WinogradConv::from_packed(made.packed_bytes(), 16, 40, b, true), nullptr);
}

}  // namespace
}  // namespace pyflame_rt
