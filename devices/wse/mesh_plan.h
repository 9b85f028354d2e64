// The placed program: what the wafer's mesh layout pass and placement decide, what the CSL
// generator (compiler/csl) emits code from and what the mesh simulator executes. Plain data,
// no behaviour: every field is filled by devices/wse/placement.cpp and read by the others.
// Extend it by adding fields with defaults; never change what an existing field means.
//
// Coordinates are PE coordinates inside the user rectangle of one system (x to the EAST, y to
// the SOUTH, (0,0) the north-west PE), as in @set_tile_code(x, y, ...).
//
//   MeshPlan plan;                                   // what placement returns
//   for (const MeshPartition& p : plan.partitions)   // one rectangle each
//     for (const MeshOp& op : p.ops)                 // run in order on p.rect's PEs
//       for (const TensorTiling& t : op.tensors) ... // t.row_axis -> PE rows, t.col_axis -> columns
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pyflame_rt {

// A rectangle of PEs [x, y, w, h] on one system's fabric.
struct MeshRect {
  int x = 0, y = 0, w = 0, h = 0;
  int system = 0;  // which wafer (0 unless the model spans several systems)
  int64_t pes() const { return static_cast<int64_t>(w) * h; }
  bool overlaps(const MeshRect& o) const {
    return system == o.system && x < o.x + o.w && o.x < x + w && y < o.y + o.h && o.y < y + h;
  }
};

// How an op is lowered onto PEs.
enum class MeshOpKind {
  kGemm,         // MatMul, Gemm, FusedMatMul: y = act(x W + b); GEMV when M == 1
  kConv,         // Conv, FusedConv (bias, activation, residual), grouped and depthwise
  kElementwise,  // unary/binary elementwise and activations (Relu, Add, Gelu, ...)
  kPool,         // MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool
  kNorm,         // BatchNormalization (unfused), LayerNormalization
  kSoftmax,      // Softmax, LogSoftmax
  kAttention,    // pyflame_rt.MultiHeadAttention: heads spread over PE rows
  kRecurrent,    // GRU: per time step a GEMV on the recurrent weights
  kReduce,       // ReduceMean/Sum/Max ... along an axis
  kMovement,     // Reshape, Transpose, Concat, Slice, ...: data movement on the fabric only
};
const char* mesh_op_kind_name(MeshOpKind kind);

// The GEMM view every compute op is tiled through: y[M, N] = x[M, K] * w[K, N] per group.
// Conv: M = batch * output pixels, K = in-channels per group * kernel area, N = out-channels
// (im2col). Elementwise ops: M = elements, K = N = 1.
struct GemmView {
  int64_t m = 1, k = 1, n = 1;
  int64_t groups = 1;  // conv groups (depthwise: groups = channels, K = kernel area)
};

// The PE grid of one op inside its partition's rectangle: K (the reduction) split over
// `k_parts` columns, N (outputs) over `n_parts` rows, and M (rows of x: pixels, tokens, batch)
// over `m_parts` replicas of that k x n block, laid out m_grid_x across and m_grid_y down.
// Weights are replicated across the m replicas; x is broadcast SOUTH down each column; partial
// y is reduced EAST along each row and leaves from the block's last column (the csl-examples
// GEMV). The block of replica (i, j) starts at (rect.x + i * k_parts, rect.y + j * n_parts).
struct MeshSplit {
  int m_parts = 1, k_parts = 1, n_parts = 1;
  int m_grid_x = 1, m_grid_y = 1;
  int width() const { return k_parts * m_grid_x; }
  int height() const { return n_parts * m_grid_y; }
  int64_t pes() const { return static_cast<int64_t>(width()) * height(); }
};

// How one tensor of an op lies on the PEs: axis `row_axis` of `dims` is cut into `row_parts`
// pieces down the PE rows, `col_axis` into `col_parts` across columns (-1: not cut that way);
// `replicated` says along which grid direction whole copies exist ("", "rows", "cols", "m":
// once per M replica). Per-PE extent of an axis = ceil(dim / parts).
struct TensorTiling {
  std::string name;   // value name in the graph
  std::string role;   // "weight", "bias", "input", "output", "residual"
  std::vector<int64_t> dims;
  int row_axis = -1, col_axis = -1;
  int row_parts = 1, col_parts = 1;
  std::string replicated;
  int64_t bytes_per_pe = 0;  // largest piece one PE holds
};

// One array a PE keeps in SRAM for an op (the globals of pe_program.csl).
struct PeBuffer {
  std::string name;   // "w_conv1", "x_conv1", "y_conv1", "acc_conv1"
  std::string role;   // "weight", "input", "output", "scratch"
  int64_t elements = 0;  // per PE (the largest PE's)
  int64_t bytes = 0;
};

// A colour's route through the routers of a rectangle: PEs receive from `rx` and send to `tx`
// (directions "NORTH", "SOUTH", "EAST", "WEST", "RAMP"), as in @set_color_config. `pattern`
// names the collective: "col_broadcast" (x flows SOUTH), "row_reduce" (partials flow EAST;
// colours alternate per column), "transfer" (between partitions), "host_in"/"host_out".
struct MeshRoute {
  int color = 0;
  std::string pattern;
  MeshRect area;  // the PEs whose routers carry the colour
  std::vector<std::string> rx, tx;
  std::string tensor;  // what flows on it
};

// A task bound in pe_program.csl: "data" (one run per arriving wavelet on `color`), "local"
// (@activate'd), "control".
struct MeshTask {
  std::string name;  // "recv_x_conv1"
  std::string kind;  // "data", "local", "control"
  int color = -1;    // data tasks: the colour (WSE-2) / input queue's colour (WSE-3)
  std::string does;  // "fmacs y += w_col * x", "fadds y += partial", ...
};

// Cycle estimate of one op from the cost model (devices/wse/cost_model.h).
struct OpCycles {
  double compute = 0;    // max over PEs of MACs / rate + task overhead
  double broadcast = 0;  // x down the columns
  double reduce = 0;     // partials along the rows
  double total = 0;      // compute + the fabric phases that do not overlap it
};

struct MeshOp {
  std::string node;     // graph node name
  std::string op_type;  // "FusedConv", "MatMul", ...
  std::string domain;   // "" or "pyflame_rt", "com.microsoft"
  MeshOpKind kind = MeshOpKind::kElementwise;
  GemmView gemm;
  MeshSplit split;
  std::vector<TensorTiling> tensors;
  std::vector<PeBuffer> buffers;
  std::vector<MeshRoute> routes;
  std::vector<MeshTask> tasks;
  // Op parameters the code generator needs (conv kernel/strides/pads/dilations/group, axis,
  // epsilon, activation): copied from the node.
  std::map<std::string, std::vector<int64_t>> ints;
  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::string> strings;  // "activation" -> "Relu"
  int64_t weight_bytes = 0;       // whole op, all PEs, one replica of the weights
  int64_t sram_bytes_max = 0;     // this op's buffers on its fullest PE
  OpCycles cycles;
  // "per_pe": the simulator computes every PE's tile and the reductions between PEs in their
  // fabric order; "whole_tensor": no arithmetic crosses PEs (elementwise, movement), so the
  // tensor is computed once, identical per element to the per-PE computation.
  std::string simulation = "per_pe";
};

// One rectangle of PEs running a run of consecutive ops of the graph (a pipeline stage).
struct MeshPartition {
  int id = 0;
  MeshRect rect;
  std::vector<MeshOp> ops;
  std::vector<std::string> inputs;   // values entering (from the host or other partitions)
  std::vector<std::string> outputs;  // values leaving
  std::vector<int> colors;           // colour ids its routes use (within the program's free ones)
  int64_t sram_bytes_max = 0;        // fullest PE, all ops' buffers + the code reserve
  int64_t sram_bytes_mean = 0;
  double est_cycles = 0;             // one item through this stage
};

// A value moving from one partition to another on the fabric (or through the host when the
// partitions are on different systems).
struct MeshTransfer {
  std::string tensor;
  int from = -1, to = -1;  // partition ids; -1 = the host
  int color = -1;
  int64_t bytes = 0;
  int hops = 0;
  double cycles = 0;
};

struct MeshPlan {
  std::string device;     // "wse3"
  std::string strategy;   // "replicated" (small), "hybrid" (medium), "pipelined" (large),
                          // "multi_system" (beyond one wafer)
  int fabric_width = 0, fabric_height = 0;  // user rectangle per system
  int systems = 1;
  int replicas = 1;       // copies of the whole pipeline side by side (batch parallelism)
  std::vector<MeshPartition> partitions;
  std::vector<MeshTransfer> transfers;
  std::vector<int> free_colors;  // colour ids the program may use
  int64_t pes_used = 0;          // all replicas
  double utilisation = 0;        // pes_used / (fabric PEs x systems)
  int64_t sram_bytes_max = 0, sram_bytes_mean = 0;
  double est_cycles = 0;          // one item, pipeline fill (latency), on the fabric
  double est_latency_us = 0;      // fabric + host I/O
  double est_throughput_per_s = 0;
  double host_io_us = 0;
  int64_t host_in_bytes = 0, host_out_bytes = 0;
};

}  // namespace pyflame_rt
