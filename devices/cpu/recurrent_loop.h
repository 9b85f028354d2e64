// Our recurrent loop's shared pieces (gru_op.cpp, lstm_op.cpp, rnn_op.cpp): the input
// projection X·Wᵀ + bias for every step at once, weights transposed and packed into column
// panels (rows_times_matrix.h), initial and final states in either layout, sequence_lens, and
// the step loop of the cells whose gates are X·Wᵀ + bias + H·Rᵀ (LSTM, RNN; the GRU's reset
// gate multiplies H before its product, so it keeps its own step).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "devices/cpu/native_ops.h"
#include "devices/cpu/rows_times_matrix.h"
#include "devices/run_interrupt.h"
#include "graph/checked_math.h"
#include "graph/memory_budget.h"
#include "graph/node.h"
#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

// H is read from R's dims. hidden_size, when the model sets it, must equal it, and 2 x gates x H
// must fit int64 (an empty R may carry any H); otherwise the reference kernel names the problem.
inline bool usable_hidden_size(const Node& node, int64_t gates, int64_t H) {
  return H >= 0 && !(CheckedInt64(2) * gates * H).overflowed() && node.attr_int("hidden_size", H) == H;
}

// The sizes of one run and where (step t, direction d, batch row n) lives in X, Y and the states.
struct RecurrentShape {
  int64_t seq = 0, batch = 0, in = 0, H = 0, dirs = 1;
  bool layout1 = false;  // batch-first: X [batch, seq, in], Y [batch, seq, dirs, H], states [batch, dirs, H]

  // Row of X (and of the input projection) holding (t, n).
  int64_t x_row(int64_t t, int64_t n) const { return layout1 ? n * seq + t : t * batch + n; }
  int64_t y_offset(int64_t t, int64_t d, int64_t n) const {
    return (layout1 ? (n * seq + t) * dirs + d : (t * dirs + d) * batch + n) * H;
  }
  int64_t state_offset(int64_t d, int64_t n) const { return (layout1 ? n * dirs + d : d * batch + n) * H; }
  Dims y_dims() const { return layout1 ? Dims{batch, seq, dirs, H} : Dims{seq, dirs, batch, H}; }
  Dims state_dims() const { return layout1 ? Dims{batch, dirs, H} : Dims{dirs, batch, H}; }
};

// The shape of a run from X [seq, batch, in] (or [batch, seq, in]) and R [dirs, G*H, H].
RecurrentShape recurrent_shape(const Tensor& x, const Tensor& r, bool layout1);

// Per direction: Wᵀ [in, G*H] as column panels, and Rᵀ [H, G*H] as panels in column parts of
// the given widths (the GRU: z and r, then h; the others one part).
struct PackedRecurrentWeights {
  Dims w_dims, r_dims;  // of the W and R they were made from (empty: nothing packed)
  std::vector<Panels> w;
  std::vector<std::vector<Panels>> r;  // [direction][part]

  bool packed_from(const Tensor& w_, const Tensor& r_) const { return w_dims == w_.dims() && r_dims == r_.dims(); }
};
PackedRecurrentWeights pack_recurrent_weights(const Tensor& w, const Tensor& r, const std::vector<int64_t>& r_parts);

// The elements of the input projection xw below, seq * batch * cols (-1 past int64), for a
// ScratchCharge declared before it: xw is `gates` times Y's size, and memory_limit_mb must
// see it as it sees the tensors.
inline int64_t projection_elements(const Tensor& x, int64_t cols) {
  const CheckedInt64 n = CheckedInt64(x.dim(0)) * x.dim(1) * cols;
  return n.overflowed() ? -1 : n.value();
}

// The run's deadline, terminate flag and stop_all_runs inside our loop (devices/run_interrupt.h):
// a model makes it as long as it likes (10^7 steps of a small cell on a few MB of input). Work
// is counted in multiply-adds, which the vectorised products do at 16-32 a nanosecond, so one
// check per 2^20 of them (~20-60 us of work, as InterruptPoll's 2^16 one-nanosecond units):
// at H 128, batch 1, one clock read every 4 LSTM steps.
inline InterruptPoll recurrent_poll() { return InterruptPoll(InterruptPoll::kWorkPerCheck << 4); }

// A float buffer whose resize() leaves new elements uninitialised: the input projection
// writes every element, and zeroing it first (820 MB for 50,000 LSTM steps at H 1024) took
// ~5 s on a VM with costly page faults, all before the first deadline check (the faults now
// fall in the blocks of project_inputs, between checks).
template <typename T>
struct DefaultInitAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  using std::allocator<T>::allocator;
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
using ProjectionBuffer = std::vector<float, DefaultInitAllocator<float>>;

// xw [seq * batch, cols] in X's row order: X·Wᵀ (w_panels: one direction's packed Wᵀ) plus
// `bias` [cols] when given. In blocks of rows, `poll` counting each block's work: fails only
// when the run must stop.
Status project_inputs(const Tensor& x, const Panels& w_panels, int64_t cols, const float* bias,
                      ProjectionBuffer& xw, InterruptPoll& poll);

// Direction d's initial state [batch, H] into dst: from s0 (in the run's layout) or zeros.
void load_state(const Tensor* s0, const RecurrentShape& s, int64_t d, float* dst);
// dst's rows [batch, H] as direction d's final state in `out` (the run's layout).
void store_state(const float* src, const RecurrentShape& s, int64_t d, Tensor& out);

// sequence_lens [batch] (int32, or int64) into `lens`, each in [0, seq]; empty for an absent
// input. False for anything else (the reference kernel names it).
bool read_sequence_lens(const Tensor* t, const RecurrentShape& s, std::vector<int64_t>* lens);

// A recurrent node's inputs as plain tensors (nullptr where absent): X, W, R, B, sequence_lens,
// initial_h, and the LSTM's initial_c and P.
struct RecurrentInputs {
  const Tensor *x = nullptr, *w = nullptr, *r = nullptr, *b = nullptr, *lens = nullptr, *h0 = nullptr,
               *c0 = nullptr, *p = nullptr;
};
// False when X, W or R is missing, X or R is not 3-D, or an input that is given is not float32
// (sequence_lens: not fixed-width): the reference kernel then names the problem.
bool read_recurrent_inputs(const std::vector<CpuValue*>& inputs, RecurrentInputs* in);

// Y, Y_h (and the LSTM's Y_c) into the node's outputs, as many as it has (gru_op, lstm_op,
// rnn_op, on either path).
inline Status set_recurrent_outputs(std::vector<CpuValue>& outputs, Tensor y, Tensor yh, Tensor yc = Tensor()) {
  outputs[0] = CpuValue::from_plain(Value(std::move(y)));
  if (outputs.size() > 1) outputs[1] = CpuValue::from_plain(Value(std::move(yh)));
  if (outputs.size() > 2) outputs[2] = CpuValue::from_plain(Value(std::move(yc)));
  return Status::OK();
}

// How often our loop ran, on any thread: the tests tell it from oneDNN's primitives by it.
uint64_t recurrent_loop_runs();
void count_recurrent_loop_run();

// One direction of a cell whose gates are X·Wᵀ + bias + H·Rᵀ: each step multiplies the batch's
// states by Rᵀ (`r_panels`, G*H columns), adds the step's projected input (xw, with the bias),
// then cell(n, gates, h_row) turns row n's G*H gates into its new state h_row [H] (and whatever
// state of its own it keeps). Rows whose sequence has ended (lens) are left alone; `y`, when
// given, receives each row's state at its step (positions past a row's length are untouched).
// `gates` is scratch. `poll` counts each step's work: fails only when the run must stop.
template <class Cell>
Status run_gated_direction(const RecurrentShape& s, int64_t G, int64_t d, bool reverse, const float* xw,
                           const Panels& r_panels, const std::vector<int64_t>& lens, float* h, float* y,
                           std::vector<float>& gates, InterruptPoll& poll, Cell&& cell) {
  const int64_t H = s.H, cols = G * H;
  gates.resize(static_cast<size_t>(s.batch * cols));
  int64_t steps = 0;
  for (int64_t n = 0; n < s.batch; ++n) steps = std::max(steps, lens.empty() ? s.seq : lens[static_cast<size_t>(n)]);
  const int64_t step_work = s.batch * cols * (H + 1);  // the product, then the gates
  for (int64_t step = 0; step < steps; ++step) {
    RETURN_IF_ERROR(poll.tick(step_work));
    rows_times_panels(h, s.batch, H, H, r_panels.data(), cols, gates.data(), cols);
    for (int64_t n = 0; n < s.batch; ++n) {
      const int64_t len = lens.empty() ? s.seq : lens[static_cast<size_t>(n)];
      if (step >= len) continue;
      const int64_t t = reverse ? len - 1 - step : step;
      float* g = gates.data() + n * cols;
      const float* x = xw + s.x_row(t, n) * cols;
      for (int64_t j = 0; j < cols; ++j) g[j] += x[j];
      float* hn = h + n * H;
      cell(n, g, hn);
      if (y) std::memcpy(y + s.y_offset(t, d, n), hn, static_cast<size_t>(H) * sizeof(float));
    }
  }
  return Status::OK();
}

}  // namespace cpu
}  // namespace pyflame_rt
