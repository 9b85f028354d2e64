// Op lowerings: each turns one placed op (CslOpSpec) into CSL functions, SRAM arrays, colour
// routes and run.py transfers in the partition's CslProgram. One file per lowering:
//   lower_gemv.cpp     Gemm/MatMul: weights stationary, x flows SOUTH, sums reduce EAST
//   lower_summa.cpp    Gemm/MatMul on a square rectangle: SUMMA with <collectives_2d>
//   lower_conv.cpp     Conv: output-stationary tiles (halo rows/columns brought in by run.py)
//   lower_pool.cpp     MaxPool/AveragePool/GlobalAveragePool
//   lower_eltwise.cpp  unary/binary elementwise ops and activations
//   lower_norm.cpp     BatchNormalization, LayerNormalization
//   lower_softmax.cpp  Softmax over the last axis
//   lower_attention.cpp pyflame_rt.MultiHeadAttention: heads down rows, keys across columns
//   lower_gru.cpp      GRU: weights and h resident, the step loop on tasks and collectives
//   lower_host.cpp     Reshape-like and movement ops (Slice too): numpy in run.py between launches
//
//   LowerContext ctx(prog, budget);
//   for (const CslOpSpec& op : spec.ops) RETURN_IF_ERROR(lower_op(op, ctx));
#pragma once

#include <map>
#include <string>
#include <vector>

#include "compiler/csl/csl_op.h"
#include "compiler/csl/csl_program.h"
#include "graph/status.h"

namespace pyflame_rt::csl {

// Per-generation limits the generator and the checker enforce (wse_spec.h has the sources).
struct CslBudget {
  int routable_colors = 24;     // colour ids 0..23 can be routed
  int memcpy_colors = 6;        // taken by the host memcpy runtime
  int64_t sram_bytes = 48 * 1024;
  int64_t code_reserve_bytes = 8 * 1024;  // program text, stack and the memcpy runtime
  int first_queue = 2;          // queues 0 (WSE-2) / 0-1 (WSE-3) belong to memcpy
  int last_queue = 7;
  int program_colors() const { return routable_colors - memcpy_colors; }
  int64_t data_bytes() const { return sram_bytes - code_reserve_bytes; }
};

// An activation that stays in SRAM after its producer: a consumer tiled the same way reads
// the array in place instead of a host round trip.
struct ResidentTensor {
  std::string array;   // the producer's output array
  std::string tiling;  // "flat:n=4096:[0,0,4,2]" - equal strings mean equal per-PE layout
};

struct LowerContext {
  LowerContext(CslProgram& p, const CslBudget& b) : prog(p), budget(b) {}
  CslProgram& prog;
  const CslBudget& budget;
  std::map<std::string, ResidentTensor> resident;
  // Share of the free SRAM an op that streams rows in chunks may take (GEMV): the generator
  // lowers again with a smaller share when the ops after it do not fit.
  double chunk_share = 1.0;

  // A colour id for `purpose` on `region`: a fresh one while the budget lasts, else one whose
  // routes so far are on PEs disjoint from `region`. kResourceExhausted names the numbers.
  Expected<int> alloc_color(const OpCode& op, const PeSet& region, const std::string& purpose);
};

Status lower_op(const CslOpSpec& spec, LowerContext& ctx);

// The individual lowerings (called by lower_op by op type).
Status lower_gemv(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_summa(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_conv(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_pool(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_eltwise(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_norm(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_softmax(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_host(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_attention(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);
Status lower_gru(const CslOpSpec& spec, LowerContext& ctx, OpCode& op);

// Which lowering an op type uses ("gemv", "conv_os", ...); "" when none does.
std::string lowering_of(const CslOpSpec& spec);

// Helpers shared by the lowerings (lowering_util.cpp).
std::string f32_literal(double v);  // shortest text that reads back as the same f32: "0.5"
// Replaces each "{key}" in `text` by its value.
std::string subst(std::string text, const std::map<std::string, std::string>& values);
int64_t ceil_div(int64_t a, int64_t b);
int64_t numel(const std::vector<int64_t>& shape);
std::string py_shape(const std::vector<int64_t>& shape);  // "(1, 64, 56, 56)"
// Adds an array (on `role`'s PEs) and returns its name.
std::string add_array(OpCode& op, LowerContext& ctx, const std::string& suffix, const std::string& role,
                      int64_t elems, bool host_visible);
const PeSet& role_set(const OpCode& op, const std::string& role);
// The output as activation in run.py: `t['name']`.
std::string py_tensor(const std::string& name);

}  // namespace pyflame_rt::csl

namespace pyflame_rt::csl {

// The "flat" layout of elementwise-style ops: the tensor's n elements in order, `chunk` per
// PE, PEs of `region` in row-major order (the last one padded).
struct FlatTiling {
  int64_t n = 0, chunk = 0;
  PeSet region;
  std::string key() const;  // the ResidentTensor tiling string
};
FlatTiling flat_tiling(int64_t n, const PeSet& region);
// The array holding input `t` in the flat layout, broadcast to `shape`: the producer's array
// when it is resident in that layout, else a new array filled by run.py (once for a weight,
// before each launch for an activation).
std::string flat_input(OpCode& op, LowerContext& ctx, const CslTensor& t, const std::string& suffix,
                       const FlatTiling& ft, const std::vector<int64_t>& shape);
// The output array in the flat layout, registered as resident, with its d2h transfer.
std::string flat_output(OpCode& op, LowerContext& ctx, const CslTensor& t, const FlatTiling& ft);
// Rows of length L (the trailing dims from `axis`), rt rows per PE, in the flat layout
// (LayerNormalization, Softmax).
struct RowTiling {
  int64_t rows = 0, L = 0, rt = 0;
};
RowTiling row_tiling(const CslOpSpec& spec, int64_t default_axis);
// CSL statements (indented by `indent`) applying activation `act` in place to `array`'s first
// n elements, whose DSD is `dsd`: DSD ops where a builtin does it (Relu, Clip, LeakyRelu,
// HardSigmoid, HardSwish), else a loop over the generated exp helpers. "" for no activation.
Expected<std::string> activation_code(const std::string& act, const std::vector<double>& params, const std::string& dsd,
                                      const std::string& array, int64_t n, LowerContext& ctx, const std::string& indent);
// SRAM bytes per PE the program's arrays so far leave free on the fullest PE of `region`.
int64_t free_bytes(LowerContext& ctx, const PeSet& region);
// Sets up the SDK's <collectives_2d> library once per partition (4 colours it routes itself,
// its entry tasks and queues); ops calling mpi_x/mpi_y must span the whole rectangle.
Status ensure_collectives(LowerContext& ctx, OpCode& op);
// "  cur_op = 2;\n  if (!op2_on) {...unblock...}\n": how every launched function starts.
std::string launch_prologue(const OpCode& op);

}  // namespace pyflame_rt::csl
