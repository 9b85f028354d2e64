// Small placed plans the CSL tests generate (and the golden files were made from): a GEMV, a
// Conv with fused Relu followed by MaxPool, an elementwise chain, a SUMMA GEMM, a depthwise and an
// im2col Conv, a MultiHeadAttention and a GRU.
#pragma once

#include "compiler/csl/csl_op.h"

namespace pyflame_rt::csl::test {

// fc: Gemm x[1, 64] W[32, 64]^T + b on 4 x 2 PEs.
inline CslPartitionSpec gemv_plan(const std::string& arch = "wse3") {
  CslPartitionSpec p;
  p.name = "gemv";
  p.arch = arch;
  p.width = 4;
  p.height = 2;
  p.fabric_w = 762;
  p.fabric_h = 1176;
  CslOpSpec& fc = p.ops.emplace_back();
  fc.node = "fc";
  fc.op_type = "Gemm";
  fc.trans_b = true;
  fc.region = {0, 0, 4, 2};
  fc.inputs = {{"x", {1, 64}, false, ""}, {"W", {32, 64}, true, ""}, {"b", {32}, true, ""}};
  fc.output = {"y", {1, 32}, false, ""};
  return p;
}

// conv1 (3 -> 4 channels, 3x3, pad 1, fused Relu) then pool1 (MaxPool 2x2 stride 2) on 2 x 2 PEs.
inline CslPartitionSpec conv_plan() {
  CslPartitionSpec p;
  p.name = "conv";
  p.width = 2;
  p.height = 2;
  CslOpSpec& c = p.ops.emplace_back();
  c.node = "conv1";
  c.op_type = "Conv";
  c.region = {0, 0, 2, 2};
  c.inputs = {{"image", {1, 3, 8, 8}, false, ""}, {"conv1.w", {4, 3, 3, 3}, true, ""}, {"conv1.b", {4}, true, ""}};
  c.output = {"c1", {1, 4, 8, 8}, false, ""};
  c.ints["kernel_shape"] = {3, 3};
  c.ints["pads"] = {1, 1, 1, 1};
  c.fused_activation = "Relu";
  CslOpSpec& m = p.ops.emplace_back();
  m.node = "pool1";
  m.op_type = "MaxPool";
  m.region = {0, 0, 2, 2};
  m.inputs = {{"c1", {1, 4, 8, 8}, false, ""}};
  m.output = {"p1", {1, 4, 4, 4}, false, ""};
  m.ints["kernel_shape"] = {2, 2};
  m.ints["strides"] = {2, 2};
  return p;
}

// add (x + bias, broadcast over rows) -> relu -> sigmoid on 4 x 1 PEs: activations stay in SRAM.
inline CslPartitionSpec eltwise_plan() {
  CslPartitionSpec p;
  p.name = "eltwise";
  p.arch = "wse2";
  p.width = 4;
  p.height = 1;
  auto add = [&](const char* node, const char* type, std::vector<CslTensor> ins, const char* out) {
    CslOpSpec& o = p.ops.emplace_back();
    o.node = node;
    o.op_type = type;
    o.region = {0, 0, 4, 1};
    o.inputs = std::move(ins);
    o.output = {out, {2, 50}, false, ""};
  };
  add("add", "Add", {{"x", {2, 50}, false, ""}, {"bias", {50}, true, ""}}, "a");
  add("relu", "Relu", {{"a", {2, 50}, false, ""}}, "r");
  add("sig", "Sigmoid", {{"r", {2, 50}, false, ""}}, "s");
  return p;
}

// mm: MatMul A[16, 12] B[12, 8] by SUMMA on 2 x 2 PEs.
inline CslPartitionSpec summa_plan() {
  CslPartitionSpec p;
  p.name = "summa";
  p.width = 2;
  p.height = 2;
  CslOpSpec& mm = p.ops.emplace_back();
  mm.node = "mm";
  mm.op_type = "MatMul";
  mm.region = {0, 0, 2, 2};
  mm.ints["summa"] = {1};
  mm.inputs = {{"A", {16, 12}, false, ""}, {"B", {12, 8}, true, ""}};
  mm.output = {"C", {16, 8}, false, ""};
  return p;
}

// dw: depthwise Conv (384 channels of 16 x 16, 3x3, pad 1, residual, Clip 0..6) on 8 x 8 PEs:
// every channel on every PE does not fit, two blocks of 4 x 8 PEs with 192 channels each do.
inline CslPartitionSpec depthwise_plan() {
  CslPartitionSpec p;
  p.name = "depthwise";
  p.width = 8;
  p.height = 8;
  CslOpSpec& c = p.ops.emplace_back();
  c.node = "dw";
  c.op_type = "Conv";
  c.region = {0, 0, 8, 8};
  c.inputs = {{"x", {1, 384, 16, 16}, false, ""}, {"dw.w", {384, 1, 3, 3}, true, ""}};
  c.output = {"y", {1, 384, 16, 16}, false, ""};
  c.ints["kernel_shape"] = {3, 3};
  c.ints["pads"] = {1, 1, 1, 1};
  c.ints["group"] = {384};
  c.residual = "x";
  c.fused_activation = "Clip";
  c.activation_params = {0, 6};
  return p;
}

// conv2: Conv 8 -> 6 channels, 3x3, pad 1, on 8 x 8 pixels through im2col + GEMV with the
// plan's split (K over 2 columns, N over 2 rows, 2 replicas side by side), a residual and Relu,
// and a small SRAM budget so the 32 rows per replica stream in chunks.
inline CslPartitionSpec im2col_plan() {
  CslPartitionSpec p;
  p.name = "im2col";
  p.arch = "wse2";
  p.width = 4;
  p.height = 2;
  CslOpSpec& c = p.ops.emplace_back();
  c.node = "conv2";
  c.op_type = "Conv";
  c.region = {0, 0, 4, 2};
  c.inputs = {{"x", {1, 8, 8, 8}, false, ""}, {"conv2.w", {6, 8, 3, 3}, true, ""}, {"conv2.b", {6}, true, ""}};
  c.output = {"y", {1, 6, 8, 8}, false, ""};
  c.ints["kernel_shape"] = {3, 3};
  c.ints["pads"] = {1, 1, 1, 1};
  c.ints["im2col"] = {1};
  c.k_parts = 2;
  c.n_parts = 2;
  c.m_grid_x = 2;
  c.m_grid_y = 1;
  c.residual = "skip";
  c.fused_activation = "Relu";
  c.sram_budget_bytes = 2400;
  return p;
}

// attn: MultiHeadAttention, Q [1, 6, 8], K, V [1, 5, 8], 2 heads (dk = dv = 4), scale 0.5, an
// additive mask [1, 1, 6, 5], on 3 x 2 PEs: one head per row, 2 keys per column (the last
// column's second key is padding), and an SRAM budget that takes the 6 queries in 2 launches of 4.
inline CslPartitionSpec mha_plan() {
  CslPartitionSpec p;
  p.name = "mha";
  p.width = 3;
  p.height = 2;
  CslOpSpec& a = p.ops.emplace_back();
  a.node = "attn";
  a.op_type = "MultiHeadAttention";
  a.region = {0, 0, 3, 2};
  a.inputs = {{"q", {1, 6, 8}, false, ""}, {"k", {1, 5, 8}, false, ""}, {"v", {1, 5, 8}, false, ""},
              {"mask", {1, 1, 6, 5}, false, ""}};
  a.output = {"o", {1, 6, 8}, false, ""};
  a.ints["num_heads"] = {2};
  a.ints["batch_first"] = {1};
  a.floats["scale"] = 0.5;
  a.sram_budget_bytes = 424;
  return p;
}

// rnn: GRU (forward, linear_before_reset = 1 as PyTorch exports it), X [4, 2, 5] (4 steps,
// batch 2, 5 inputs), hidden 3, bias and h0, on 2 x 2 PEs: 2 hidden units per row (one padded),
// 3 inputs and 2 hidden values per column; returns Y and Y_h.
inline CslPartitionSpec gru_plan() {
  CslPartitionSpec p;
  p.name = "gru";
  p.arch = "wse2";
  p.width = 2;
  p.height = 2;
  CslOpSpec& g = p.ops.emplace_back();
  g.node = "rnn";
  g.op_type = "GRU";
  g.region = {0, 0, 2, 2};
  g.inputs = {{"X", {4, 2, 5}, false, ""}, {"W", {1, 9, 5}, true, ""}, {"R", {1, 9, 3}, true, ""},
              {"B", {1, 18}, true, ""}, {"h0", {1, 2, 3}, false, ""}};
  g.output = {"Y", {4, 1, 2, 3}, false, ""};
  g.extra_outputs = {{"Y_h", {1, 2, 3}, false, ""}};
  g.ints["hidden_size"] = {3};
  g.ints["linear_before_reset"] = {1};
  g.strings["direction"] = "forward";
  p.outputs = {"Y", "Y_h"};
  return p;
}

}  // namespace pyflame_rt::csl::test
