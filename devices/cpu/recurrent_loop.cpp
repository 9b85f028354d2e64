#include "devices/cpu/recurrent_loop.h"

#include <algorithm>

namespace pyflame_rt {
namespace cpu {

namespace {

std::atomic<uint64_t> g_loop_runs{0};

}  // namespace

RecurrentShape recurrent_shape(const Tensor& x, const Tensor& r, bool layout1) {
  RecurrentShape s;
  s.layout1 = layout1;
  s.seq = layout1 ? x.dim(1) : x.dim(0);
  s.batch = layout1 ? x.dim(0) : x.dim(1);
  s.in = x.dim(2);
  s.dirs = r.dim(0);
  s.H = r.dim(2);
  return s;
}

PackedRecurrentWeights pack_recurrent_weights(const Tensor& w, const Tensor& r, const std::vector<int64_t>& r_parts) {
  PackedRecurrentWeights p{w.dims(), r.dims(), {}, {}};
  const int64_t dirs = w.dim(0), rows = w.dim(1), in = w.dim(2), H = r.dim(2);
  for (int64_t d = 0; d < dirs; ++d) {
    // Wᵀ and Rᵀ: column g is row g of W and R.
    p.w.push_back(pack_transposed_panels(w.data<float>() + d * rows * in, rows, in, in));
    p.r.emplace_back();
    const float* rd = r.data<float>() + d * rows * H;
    int64_t first = 0;
    for (int64_t width : r_parts) {
      p.r.back().push_back(pack_transposed_panels(rd + first * H, width, H, H));
      first += width;
    }
  }
  return p;
}

Status project_inputs(const Tensor& x, const Panels& w_panels, int64_t cols, const float* bias,
                      ProjectionBuffer& xw, InterruptPoll& poll) {
  // X's rows are contiguous [rows, in] in either layout; x_row says which is which.
  const int64_t rows = x.dim(0) * x.dim(1), in = x.dim(2);
  xw.resize(static_cast<size_t>(rows * cols));
  // Blocks of rows (a multiple of the four rows the product takes at once): the same product,
  // with a chance to stop between blocks of a very long sequence.
  constexpr int64_t kBlockRows = 1024;
  for (int64_t first = 0; first < rows; first += kBlockRows) {
    const int64_t n = std::min(kBlockRows, rows - first);
    RETURN_IF_ERROR(poll.tick(n * cols * (in + 1)));
    rows_times_panels(x.data<float>() + first * in, n, in, in, w_panels.data(), cols, xw.data() + first * cols, cols);
    if (!bias) continue;
    for (int64_t i = first; i < first + n; ++i) {
      float* row = xw.data() + i * cols;
      for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
    }
  }
  return Status::OK();
}

void load_state(const Tensor* s0, const RecurrentShape& s, int64_t d, float* dst) {
  for (int64_t n = 0; n < s.batch; ++n) {
    if (s0) {
      const float* src = s0->data<float>() + s.state_offset(d, n);
      std::copy(src, src + s.H, dst + n * s.H);
    } else {
      std::fill(dst + n * s.H, dst + (n + 1) * s.H, 0.f);
    }
  }
}

void store_state(const float* src, const RecurrentShape& s, int64_t d, Tensor& out) {
  for (int64_t n = 0; n < s.batch; ++n) {
    std::copy(src + n * s.H, src + (n + 1) * s.H, out.data<float>() + s.state_offset(d, n));
  }
}

bool read_sequence_lens(const Tensor* t, const RecurrentShape& s, std::vector<int64_t>* lens) {
  lens->clear();
  if (!t) return true;
  if ((t->dtype() != DType::kInt32 && t->dtype() != DType::kInt64) || t->dims() != Dims{s.batch}) return false;
  for (int64_t n = 0; n < s.batch; ++n) {
    const int64_t len = t->value_as_int64(n);
    if (len < 0 || len > s.seq) return false;
    lens->push_back(len);
  }
  return true;
}

bool read_recurrent_inputs(const std::vector<CpuValue*>& inputs, RecurrentInputs* in) {
  auto at = [&](size_t i) { return i < inputs.size() ? inputs[i] : nullptr; };
  const Tensor** f32[] = {&in->x, &in->w, &in->r, &in->b, nullptr, &in->h0, &in->c0, &in->p};
  for (size_t i = 0; i < 8; ++i) {
    const Tensor* t = i == 4 ? plain_fixed(at(i)) : plain_f32(at(i));
    if (at(i) && !t) return false;
    *(i == 4 ? &in->lens : f32[i]) = t;
  }
  return in->x && in->w && in->r && in->x->rank() == 3 && in->r->rank() == 3;
}

uint64_t recurrent_loop_runs() { return g_loop_runs.load(std::memory_order_relaxed); }
void count_recurrent_loop_run() { g_loop_runs.fetch_add(1, std::memory_order_relaxed); }

}  // namespace cpu
}  // namespace pyflame_rt
