// The generator's input: one partition of a placed plan as the CSL generator needs it (its
// rectangle, and per op the node, its shapes and the PEs it was placed on). The wafer
// device's mesh plan (devices/wse/mesh_plan.h) is converted into this by from_mesh_plan.cpp;
// tests build it by hand.
//
//   CslPartitionSpec p;  p.name = "p0";  p.arch = "wse3";  p.width = 4;  p.height = 2;
//   CslOpSpec& fc = p.ops.emplace_back();
//   fc.node = "fc";  fc.op_type = "Gemm";  fc.region = {0, 0, 4, 2};
//   fc.inputs = {{"x", {1, 64}, false}, {"W", {32, 64}, true}, {"b", {32}, true}};
//   fc.output = {"y", {1, 32}, false};
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "compiler/csl/csl_program.h"

namespace pyflame_rt::csl {

struct CslTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool weight = false;  // an initialiser: loaded once, stays in SRAM
  // run.py expression producing it when it is not a plain model tensor (im2col of a Conv's
  // input, a weight reshaped): "im2col(t['x'], ...)"; "" = t['name'] / w('name').
  std::string py;
};

struct CslOpSpec {
  std::string node;
  std::string op_type;          // ONNX op type ("Gemm", "Conv", "Relu", "MaxPool", ...)
  PeSet region;                 // the PEs the placement gave it (partition-local)
  std::vector<CslTensor> inputs;
  CslTensor output;
  std::map<std::string, std::vector<int64_t>> ints;  // integer attributes (kernel_shape, ...)
  std::map<std::string, double> floats;              // float attributes (epsilon, alpha, ...)
  std::map<std::string, std::string> strings;        // string attributes (GRU direction, ...)
  // Outputs after the first (GRU's Y_h), in the node's order; "" names for absent ones.
  std::vector<CslTensor> extra_outputs;
  bool trans_b = false;         // Gemm transB (W given as [N, K])
  // GEMM-view split from the plan (devices/wse MeshSplit): K over k_parts columns, N over
  // n_parts rows, M over m_grid_x x m_grid_y replicas of that block. 0: the whole region is
  // one block.
  int k_parts = 0, n_parts = 0, m_grid_x = 1, m_grid_y = 1;
  // SRAM this op may use per PE (the plan's figure for its buffers); 0: what the partition's
  // other ops leave free. Ops that stream rows (GEMV) size their row chunks to it.
  int64_t sram_budget_bytes = 0;
  std::string fused_activation;            // applied to the output in place ("" none): "Relu", "Clip", ...
  std::vector<double> activation_params;   // its alpha/beta or min/max (pyflame_rt fusion order)
  std::string residual;                    // a tensor added before the activation (FusedConv), "" none
};

struct CslPartitionSpec {
  std::string name = "p0";
  std::string arch = "wse3";    // "wse2" | "wse3"
  int width = 0, height = 0;
  int wafer_x = 0, wafer_y = 0;
  int fabric_w = 0, fabric_h = 0;  // the machine's fabric dims (0: derived from width/height)
  std::vector<CslOpSpec> ops;   // in execution order
  // Tensors the partition must hand back to the host (graph outputs, values other partitions
  // read). Empty: every op output no later op of this partition reads in place.
  std::vector<std::string> outputs;
};

}  // namespace pyflame_rt::csl
