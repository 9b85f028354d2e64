// CslProgram: one partition's CSL program as data, before it is printed. The op lowerings
// (lower_*.cpp) fill it, the writers (layout_writer, pe_program_writer, host_script_writer)
// print it, and the checker (csl_checker.h) verifies it and the printed text. Keeping the
// program as data is what lets the checker ask "is every colour this PE uses routed here?"
// without parsing CSL.
//
// Coordinates are partition-local (0..width-1, 0..height-1): each partition is its own SDK
// program whose rectangle is placed on the wafer by the fabric offsets given to cslc.
//
//   CslProgram prog;  prog.width = 4; prog.height = 3;  prog.arch = "wse3";
//   RETURN_IF_ERROR(lower_op(op, prog));          // lowering.h
//   std::string layout = write_layout(prog);      // writers.h
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pyflame_rt::csl {

// A set of PEs: a rectangle, optionally cut into blocks (the replicas of an op: every bx-th
// column starts a block) of which only columns [bx_lo, bx_lo + bx_n) count, and optionally
// only every x_mod-th column (relative to the block) - the alternating colours of a row
// reduction. Rows likewise with by. Printed as a CSL comptime predicate over (x, y).
struct PeSet {
  int x0 = 0, y0 = 0, w = 0, h = 0;
  int x_mod = 1, x_rem = 0;        // columns with (x - x0) [% bx] % x_mod == x_rem
  int bx = 0, bx_lo = 0, bx_n = 0; // bx > 0: columns with bx_lo <= (x - x0) % bx < bx_lo + bx_n
  int by = 0, by_lo = 0, by_n = 0; // rows likewise

  bool contains_x(int x) const {
    if (x < x0 || x >= x0 + w) return false;
    int r = x - x0;
    if (bx > 0) {
      r %= bx;
      if (r < bx_lo || r >= bx_lo + bx_n) return false;
    }
    return r % x_mod == x_rem;
  }
  bool contains_y(int y) const {
    if (y < y0 || y >= y0 + h) return false;
    return by <= 0 || ((y - y0) % by >= by_lo && (y - y0) % by < by_lo + by_n);
  }
  bool contains(int x, int y) const { return contains_x(x) && contains_y(y); }
  bool empty() const { return w <= 0 || h <= 0 || x_rem >= w; }
  // "x >= 1 and x < 4 and y == 0 and (x - 1) % 2 == 0"; bounds that the partition rectangle
  // already implies (given its width/height) are left out; "true" for the whole rectangle.
  std::string predicate(int width, int height) const;
  std::string to_string() const;  // "[x0,y0,w,h]" plus the block and parity terms
};

enum class Dir { kRamp, kNorth, kSouth, kEast, kWest };
const char* dir_name(Dir d);  // "RAMP", "NORTH", ...

// @set_color_config(x, y, color, .{ .routes = .{ .rx = rx, .tx = tx } }) on every PE of pes.
struct RouteRule {
  PeSet pes;
  int color = 0;
  std::vector<Dir> rx, tx;
};

// The PEs of `pes` send (fabout_dsd) or receive (fabin_dsd / data task) on `color`.
struct ColorUse {
  PeSet pes;
  int color = 0;
  bool receive = false;
  bool data_task = false;  // received by a data task (per wavelet), not a fabin_dsd
};

// A global f32 array in SRAM. On PEs outside `pes` it has length 1 (one program serves the
// whole rectangle; the length is a comptime expression of the PE's role).
struct CslArray {
  std::string name;
  PeSet pes;
  int64_t elems = 0;
  std::string role;           // the comptime flag that is true on `pes` ("op0_on")
  bool host_visible = false;  // exported for memcpy (symbol of the same name)
};

// A block of the host's data moved by run.py (memcpy_h2d or memcpy_d2h) to/from the PEs of
// `pes` (a plain rectangle), elems_per_pe each, from/into a numpy array the script builds
// with `host_expr` (h2d: an expression of the model's tensors; d2h: the name assigned).
struct HostTransfer {
  bool to_device = true;
  std::string symbol;     // the exported array
  PeSet pes;
  int64_t elems_per_pe = 0;
  // python: for h2d the array to send (any shape; sent flattened); for d2h a statement that
  // stores the received flat `buf` into the model tensor, t['y'] = buf.reshape(...)
  std::string host_expr;
  bool weight = false;    // loaded once before the runs (weights), else per run (activations)
  std::string tensor;     // the model tensor it carries (d2h: the one it produces)
  std::string prep;       // python statement run before it (an array several transfers slice)
  // python condition for a per-launch transfer that not every launch needs ("c % 4 == 0": the
  // keys of attention, once per batch row); "" = always.
  std::string when;
};

// A function of one op, called from the program's shared tasks: the handler of a colour's
// data task (takes the wavelet) or of a local task kind.
struct Handler {
  std::string task;  // shared task name: "recv_c3" (data task of colour 3) or "t_step", "t_exit"
  std::string fn;    // the op's function, e.g. "op0_recv_x"
};

// Everything one lowered op contributes.
struct OpCode {
  int index = 0;             // op number in the partition (also `cur_op` while it runs)
  std::string node;          // graph node name
  std::string op_type;       // ONNX op type
  std::string lowering;      // "gemv", "summa", "conv_os", "eltwise", "pool", "norm", "softmax"
  PeSet region;              // PEs that take part
  std::string launch;        // host-launched function "op0"
  // Comptime role flags, computed per PE in layout.csl and passed as params ("op0_top").
  std::vector<std::pair<std::string, PeSet>> roles;
  std::string functions;     // CSL text: the op's functions (launch body, handlers)
  std::vector<Handler> handlers;
  std::vector<ColorUse> uses;
  std::vector<int> colors;   // colour ids it allocated (for the report and the checker)
  int64_t macs_per_pe = 0;   // the busiest PE's multiply-adds (for comments and reports)
  // Ops that move data only (Reshape, Transpose, Concat) run in run.py: no launch, this
  // python statement instead; host_reads are the tensors it reads.
  std::string host_code;
  std::vector<std::string> host_reads;
  std::vector<HostTransfer> before;  // run.py: activations in before the launch
  std::vector<HostTransfer> after;   // run.py: results out after it
  // run.py: the op runs `chunks` times (rows in chunks that fit SRAM), `c` the chunk index in
  // the transfers' expressions; prep before the loop, post after it.
  int chunks = 1;
  std::vector<std::string> prep, post;
};

// A data task bound to a colour's wavelets (WSE-2: id from the colour; WSE-3: from the input
// queue bound to it) or a local task (@activate / @block / @unblock).
struct CslTask {
  std::string name;
  bool data = false;
  int color = -1;     // data tasks
  int id = -1;        // local task id; data tasks on WSE-3: input queue id
};

struct CslProgram {
  std::string partition;   // "p0"
  std::string arch = "wse3";
  int width = 0, height = 0;  // rectangle of PEs
  int wafer_x = 0, wafer_y = 0;  // where the placement put it (for comments and cslc offsets)
  int fabric_w = 0, fabric_h = 0;  // the machine's fabric (cslc --fabric-dims on a system)

  std::vector<int> colors;         // allocated colour ids, ascending
  std::map<int, std::string> color_purpose;  // id -> "op0 x down the columns"
  std::vector<RouteRule> routes;
  // Colours routed by an SDK library rather than our @set_color_config (collectives_2d).
  std::set<int> library_routed;
  std::vector<CslArray> arrays;
  std::vector<OpCode> ops;
  std::vector<CslTask> tasks;      // filled by assign_tasks (tasks.cpp)
  std::map<std::string, int> library_tasks;  // local task ids an SDK library binds itself
  std::map<int, int> input_queue;  // colour -> input queue (WSE-3 data tasks come from it)
  std::map<int, int> output_queue; // colour -> output queue
  std::vector<int> library_queues; // queue ids handed to <collectives_2d> (x pair, y pair)
  std::vector<HostTransfer> weights;  // run.py: loaded once after load()/run()
  std::vector<std::string> imports;  // extra module imports printed in pe_program.csl
  std::vector<std::string> layout_imports;
  std::vector<std::string> layout_params;   // extra per-PE param expressions (collectives)
  std::vector<std::string> pe_params;       // matching `param` lines in pe_program.csl
  std::vector<std::string> host_inputs;     // model tensors run.py reads (inputs.npz)
  std::vector<std::string> host_outputs;    // model tensors run.py writes (outputs.npz)
  std::vector<std::string> host_weights;    // initialisers run.py reads (weights/NAME.npy)

  int64_t array_bytes_at(int x, int y) const;  // SRAM of the arrays on PE (x, y)
};

}  // namespace pyflame_rt::csl
