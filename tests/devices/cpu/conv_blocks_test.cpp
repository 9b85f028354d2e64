// Convolutions cut into blocks of output channels taken dynamically (conv_blocks.h): the block
// plan covers every channel once on block boundaries, and the CPU device's convolution run as
// blocks (PFRT_CONV_BLOCKS) gives the unsplit result and the reference kernel's, for odd sizes,
// strides, asymmetric padding, dilation, groups, depthwise, a fused residual and activation.
#include "devices/cpu/conv_blocks.h"
#include "devices/cpu/core_contention.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <set>

#include "devices/cpu/cpu_device.h"
#include "devices/ref/ref_device.h"
#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

using cpu::ConvBlock;
using cpu::ConvBlockShape;

// Every output channel in exactly one block, in order, each block starting on a channel block
// (input channels too when grouped), groups and channels consistent.
void expect_cover(const ConvBlockShape& s, const std::vector<ConvBlock>& blocks, const std::string& label) {
  int64_t next_out = 0, next_group = 0;
  for (const ConvBlock& b : blocks) {
    EXPECT_EQ(b.out0, next_out) << label;
    EXPECT_GT(b.outs, 0) << label;
    EXPECT_EQ(b.out0 % std::max<int64_t>(s.channel_block, 1), 0) << label;
    if (s.group > 1) {
      EXPECT_EQ(b.group0, next_group) << label;
      EXPECT_EQ(b.in0, b.group0 * (s.in_channels / s.group)) << label;
      EXPECT_EQ(b.ins, b.groups * (s.in_channels / s.group)) << label;
      EXPECT_EQ(b.outs, b.groups * (s.out_channels / s.group)) << label;
      EXPECT_EQ(b.in0 % s.channel_block, 0) << label;
      next_group += b.groups;
    } else {
      EXPECT_EQ(b.in0, 0) << label;
      EXPECT_EQ(b.ins, s.in_channels) << label;
    }
    next_out += b.outs;
  }
  EXPECT_EQ(next_out, s.out_channels) << label;
  if (s.group > 1) {
    EXPECT_EQ(next_group, s.group) << label;
  }
}

TEST(ConvBlocksTest, PlanCoversEveryChannelOnBlockBoundaries) {
  const int64_t big = int64_t{1} << 30;
  struct Case { ConvBlockShape s; int threads, per_thread; size_t expect; };
  const std::vector<Case> cases = {
      {{256, 256, 1, 16, big}, 2, 4, 8},       // 8 units of 32 channels: 8 blocks
      {{512, 512, 1, 8, big}, 2, 4, 8},        // 16 units, 8 blocks of 2
      {{64, 80, 1, 16, big}, 2, 4, 3},         // 80 channels: 32, 32, 16
      {{64, 40, 1, 16, big}, 2, 4, 0},         // 40 channels: 2 units, not more than the threads
      {{64, 128, 1, 1, big}, 2, 4, 4},         // plain layout: 32-channel units still
      {{96, 96, 96, 16, big}, 2, 4, 6},        // depthwise: 16 groups per unit
      {{192, 192, 16, 16, big}, 2, 2, 4},      // 12 channels per group: 4-group units, 4 of them
      {{64, 128, 2, 8, big}, 2, 4, 0},         // 2 groups: 2 units, not more than the threads
      {{256, 256, 1, 16, 5 * cpu::kMinBlockMacs}, 2, 4, 5},  // capped by work per block
      {{256, 256, 1, 16, 2 * cpu::kMinBlockMacs}, 2, 4, 0},  // too little work to cut
      {{256, 256, 1, 16, big}, 1, 4, 0},       // one thread: no blocks
  };
  for (const Case& c : cases) {
    std::string label = "C" + std::to_string(c.s.in_channels) + " M" + std::to_string(c.s.out_channels) + " g" +
                        std::to_string(c.s.group) + " cb" + std::to_string(c.s.channel_block);
    auto blocks = cpu::plan_conv_blocks(c.s, c.threads, c.per_thread);
    EXPECT_EQ(blocks.size(), c.expect) << label;
    if (!blocks.empty()) expect_cover(c.s, blocks, label);
  }
}

TEST(ConvBlocksTest, DynamicRunDoesEachBlockOnceAndRethrows) {
  std::vector<std::atomic<int>> done(37);
  cpu::run_blocks_dynamic(done.size(), 2, [&](size_t b) { done[b].fetch_add(1); });
  for (size_t b = 0; b < done.size(); ++b) EXPECT_EQ(done[b].load(), 1) << b;
  EXPECT_THROW(cpu::run_blocks_dynamic(5, 2, [](size_t b) {
                 if (b == 3) throw std::runtime_error("block 3");
               }),
               std::runtime_error);
}

struct ConvCase {
  std::string label;
  Dims x, w;
  int64_t group = 1;
  std::vector<int64_t> strides, pads, dilations;
  bool bias = true, residual = false;
  std::string activation;
  // Whether it runs as blocks (1), stays whole (0) or either, by the CPU's kernels (-1): with
  // oneDNN's choice of layouts, and with the compiler's channel-blocked layout (2-D only).
  int expect_blocks = 1, blocked_blocks = 1;
  std::string layout = "";     // "blocked": the compiler's channel-blocked layout on both sides
};

// Sets PFRT_CONV_BLOCKS for the ops made while it lives (ConvOp reads it when created).
struct BlocksEnv {
  explicit BlocksEnv(const char* v) {
    if (v) setenv("PFRT_CONV_BLOCKS", v, 1);
    else unsetenv("PFRT_CONV_BLOCKS");
  }
  ~BlocksEnv() { unsetenv("PFRT_CONV_BLOCKS"); }
};

// Output dims of `c` (ONNX rule), for the residual input.
Dims out_dims(const ConvCase& c) {
  size_t k = c.x.size() - 2;
  Dims out = {c.x[0], c.w[0]};
  for (size_t d = 0; d < k; ++d) {
    int64_t s = c.strides.empty() ? 1 : c.strides[d], dil = c.dilations.empty() ? 1 : c.dilations[d];
    int64_t pb = c.pads.empty() ? 0 : c.pads[d], pe = c.pads.empty() ? 0 : c.pads[d + k];
    out.push_back((c.x[d + 2] + pb + pe - ((c.w[d + 2] - 1) * dil + 1)) / s + 1);
  }
  return out;
}

Graph conv_graph(const ConvCase& c) {
  Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kFloat32, Shape::from_dims(c.x)});
  g.initializers["w"] = random_tensor(c.w, 11);
  std::vector<std::string> in = {"x", "w"};
  if (c.bias || c.residual) {
    in.push_back(c.bias ? "b" : "");
    if (c.bias) g.initializers["b"] = random_tensor({c.w[0]}, 12);
  }
  const bool fused = c.residual || !c.activation.empty() || !c.layout.empty();
  if (c.residual) {
    in.push_back("r");
    g.inputs.push_back({"r", DType::kFloat32, Shape::from_dims(out_dims(c))});
  }
  if (fused) g.opset_imports["pyflame_rt"] = 1;
  Node& n = g.add_node(fused ? "FusedConv" : "Conv", in, {"y"}, "conv");
  if (fused) n.domain = "pyflame_rt";
  n.attributes["group"] = Attribute::make_int(c.group);
  if (!c.strides.empty()) n.attributes["strides"] = Attribute::make_ints(c.strides);
  if (!c.pads.empty()) n.attributes["pads"] = Attribute::make_ints(c.pads);
  if (!c.dilations.empty()) n.attributes["dilations"] = Attribute::make_ints(c.dilations);
  if (!c.activation.empty()) n.attributes["activation"] = Attribute::make_string(c.activation);
  if (!c.layout.empty()) {
    n.attributes["pyflame_rt_src_layout"] = Attribute::make_string(c.layout);
    n.attributes["pyflame_rt_dst_layout"] = Attribute::make_string(c.layout);
  }
  g.outputs.push_back({"y", DType::kFloat32, Shape::unknown_rank()});
  return g;
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  double scale = 1e-6, err = 0;
  for (int64_t i = 0; i < b.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(b.data<float>()[i])));
  for (int64_t i = 0; i < b.numel(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(a.data<float>()[i]) - b.data<float>()[i]));
  }
  return err / scale;
}

// Runs `c` on the CPU device (2 threads) with blocks on ("4" per thread) or off, twice (the
// second run reuses the plan); returns the output and how many blocks ran.
std::pair<Tensor, uint64_t> run_cpu(const ConvCase& c, const std::vector<Value>& feeds, const char* blocks) {
  BlocksEnv env(blocks);
  cpu::ThreadAdaptation fixed_team(false);  // blocks are cut for 2 threads only, however loaded the machine
  auto program = make_cpu_device(2)->compile(conv_graph(c));
  EXPECT_TRUE(program.ok()) << c.label << ": " << program.status().to_string();
  if (!program.ok()) return {Tensor(), 0};
  uint64_t before = cpu::blocks_run_on_this_thread();
  Tensor out;
  for (int i = 0; i < 2; ++i) {
    auto r = (*program)->run(feeds);
    EXPECT_TRUE(r.ok()) << c.label << ": " << r.status().to_string();
    if (!r.ok()) return {Tensor(), 0};
    out = (*r)[0].tensor;
  }
  return {out, cpu::blocks_run_on_this_thread() - before};
}

TEST(ConvBlocksTest, BlocksMatchTheUnsplitConvolutionAndTheReference) {
  // label, x, w, group, strides, pads, dilations; then the options that differ from the defaults.
  auto conv = [](std::string label, Dims x, Dims w, int64_t group = 1, std::vector<int64_t> strides = {},
                 std::vector<int64_t> pads = {}, std::vector<int64_t> dilations = {}) {
    ConvCase c;
    c.label = std::move(label);
    c.x = std::move(x);
    c.w = std::move(w);
    c.group = group;
    c.strides = std::move(strides);
    c.pads = std::move(pads);
    c.dilations = std::move(dilations);
    return c;
  };
  std::vector<ConvCase> cases = {
      conv("1x1 64->256 odd 15x13", {1, 64, 15, 13}, {256, 64, 1, 1}),
      conv("3x3 64->128 pad 1", {1, 64, 17, 15}, {128, 64, 3, 3}, 1, {}, {1, 1, 1, 1}),
      conv("3x3 stride 2 asymmetric pads, 80 outputs", {1, 48, 47, 39}, {80, 48, 3, 3}, 1, {2, 2}, {0, 1, 2, 1}),
      conv("3x3 dilation 2", {1, 32, 21, 21}, {96, 32, 3, 3}, 1, {}, {2, 2, 2, 2}, {2, 2}),
      conv("5x3 kernel stride 2x1", {1, 32, 27, 14}, {80, 32, 5, 3}, 1, {2, 1}, {2, 1, 2, 1}),
      conv("depthwise 3x3 96 channels", {1, 96, 113, 111}, {96, 1, 3, 3}, 96, {}, {1, 1, 1, 1}),
      conv("depthwise 5x5 stride 2, 144 channels", {1, 144, 119, 113}, {144, 1, 5, 5}, 144, {2, 2}, {2, 2, 2, 2}),
      conv("16 groups of 12 -> 16 groups of 24", {1, 192, 31, 29}, {384, 12, 3, 3}, 16, {}, {1, 1, 1, 1}),
      conv("1x1 residual sum + Relu", {1, 128, 28, 28}, {256, 128, 1, 1}),
      conv("3x3 stride 2 residual sum", {1, 64, 29, 29}, {128, 64, 3, 3}, 1, {2, 2}, {1, 1, 1, 1}),
      conv("1x1 with Clip", {1, 96, 28, 28}, {64, 96, 1, 1}),
      conv("3-D 3x3x3", {1, 16, 13, 14, 15}, {64, 16, 3, 3, 3}, 1, {}, {1, 1, 1, 1, 1, 1}),
      conv("batch 2 stays whole", {2, 64, 15, 13}, {256, 64, 1, 1}),
  };
  cases[3].bias = false;
  cases[8].residual = true;
  cases[8].activation = "Relu";
  cases[9].residual = true;
  cases[9].bias = false;
  cases[10].activation = "Clip";
  // Whole: 3x3 stride 1 runs Winograd (oneDNN's on AVX-512, ours on AVX2), where each block
  // would transform the whole input again; a batch of 2 has no channel or row range that is
  // one piece. By the CPU: the grouped conv (AVX-512: a layout neither channel-blocked nor
  // channels-last; AVX2: 8-channel blocks), the 1x1 with 64 outputs (AVX-512: channels-last,
  // cut into rows; AVX2: two 32-channel units, no more than the threads) and the 3-D conv.
  cases[1].expect_blocks = cases[1].blocked_blocks = 0;
  cases[12].expect_blocks = cases[12].blocked_blocks = 0;
  cases[7].expect_blocks = cases[7].blocked_blocks = -1;
  cases[10].expect_blocks = -1;
  cases[10].blocked_blocks = 0;
  cases[11].expect_blocks = -1;
  // The same 2-D cases in the compiler's channel-blocked layout (blocks of output channels).
  const size_t plain = cases.size();
  for (size_t k = 0; k < plain; ++k) {
    if (cases[k].x.size() != 4) continue;
    ConvCase b = cases[k];
    b.label += " (blocked layout)";
    b.layout = "blocked";
    b.expect_blocks = b.blocked_blocks;
    cases.push_back(b);
  }
  uint32_t seed = 100;
  for (const ConvCase& c : cases) {
    std::vector<Value> feeds = {Value(random_tensor(c.x, seed++))};
    // The residual as a runtime input (FusedConv's fourth input).
    if (c.residual) feeds.emplace_back(random_tensor(out_dims(c), seed++));
    auto ref_program = make_ref_device()->compile(conv_graph(c));
    ASSERT_TRUE(ref_program.ok()) << c.label << ": " << ref_program.status().to_string();
    auto ref = (*ref_program)->run(feeds);
    ASSERT_TRUE(ref.ok()) << c.label << ": " << ref.status().to_string();
    auto [whole, whole_blocks] = run_cpu(c, feeds, nullptr);
    auto [split, split_blocks] = run_cpu(c, feeds, "4");
    ASSERT_TRUE(whole.defined() && split.defined()) << c.label;
    EXPECT_EQ(whole_blocks, 0u) << c.label;
    if (c.expect_blocks == 1) {
      EXPECT_GE(split_blocks, 6u) << c.label << ": the convolution did not run as blocks";
    } else if (c.expect_blocks == 0) {
      EXPECT_EQ(split_blocks, 0u) << c.label;
    }
    ASSERT_EQ(split.dims(), whole.dims()) << c.label;
    EXPECT_LT(max_rel_diff(split, whole), 1e-5) << c.label << " blocks vs one primitive";
    EXPECT_LT(max_rel_diff(split, (*ref)[0].tensor), 1e-5) << c.label << " blocks vs reference";
  }
}

}  // namespace
}  // namespace pyflame_rt
