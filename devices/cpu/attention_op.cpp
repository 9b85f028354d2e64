// Native pyflame_rt.MultiHeadAttention (semantics and layout: ref/kernels/attention_layout.h).
// Per (batch, head) and block of query rows: scores = scale * Q_h K_h^T with oneDNN's
// row-major sgemm, reading the head's columns of Q and K in place through the leading dimension
// (no per-head copies or transposes), + mask, a numerically stable softmax per row, then
// out_h = P V_h written straight into the head's columns of the output. The (pair, block)
// items are spread over the run's OpenMP team; each thread owns one block's scores buffer.
// Inside the parallel region oneDNN's gemm runs single-threaded, so the items do not
// oversubscribe the cores.
//
// Query rows go in blocks (kScoreBlockFloats, kItemMacs) so that a hostile or huge attention
// (L = S = 10^5) neither allocates a whole [L, S] scores matrix per thread outside the run's
// memory limit (the blocks are one tensor, charged to it) nor runs for minutes between two
// checks of the run's deadline, terminate flag and stop_all_runs (checked before each item).
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <vector>

#include "devices/cpu/native_ops.h"
#include "devices/target_clones.h"
#include "devices/cpu/vector_math.h"
#include "devices/ref/kernels/attention_layout.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Each loop is compiled per ISA and picked at load time (as in vector_math.cpp). Reductions
// keep kLanes partial results: without -ffast-math the compiler may not reorder a single
// running max or sum, but it does vectorise independent lanes.
constexpr int64_t kLanes = 16;

PFRT_TARGET_CLONES float row_max(const float* x, int64_t n) {
  float lane[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) lane[j] = x[0];
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lane[j] = lane[j] > x[i + j] ? lane[j] : x[i + j];
  }
  float m = x[0];
  for (int64_t j = 0; j < kLanes; ++j) m = std::max(m, lane[j]);
  for (; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

PFRT_TARGET_CLONES void add_scalar(float* x, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i) x[i] += c;
}

PFRT_TARGET_CLONES void add_row(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

PFRT_TARGET_CLONES float row_sum(const float* x, int64_t n) {
  float lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lane[j] += x[i + j];
  }
  float s = 0;
  for (int64_t j = 0; j < kLanes; ++j) s += lane[j];
  for (; i < n; ++i) s += x[i];
  return s;
}

PFRT_TARGET_CLONES void scale_row(float* x, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i) x[i] *= c;
}

// softmax(x) = exp(x - max) / sum: subtracting the max keeps exp from overflowing.
void softmax_row(float* x, int64_t n) {
  add_scalar(x, n, -row_max(x, n));
  exp_inplace(x, n);
  scale_row(x, n, 1.0f / row_sum(x, n));
}

// Adds row l of the (broadcast) mask for pair (b, h) to the scores row.
void add_mask_row(float* row, const float* mask, const AttentionLayout& a, int64_t b, int64_t h, int64_t l) {
  const float* m = mask + b * a.mask_stride[0] + h * a.mask_stride[1] + l * a.mask_stride[2];
  if (a.mask_stride[3] == 1) {
    add_row(row, m, a.kv_len);
  } else {
    add_scalar(row, a.kv_len, m[0]);  // one value along the key axis
  }
}

// A block's scores (256 KB: stays in L2 between the two products) and its work (2^22
// multiply-adds, ~0.1-0.2 ms on one core: the longest stretch between two checks).
constexpr int64_t kScoreBlockFloats = int64_t{1} << 16;
constexpr int64_t kItemMacs = int64_t{1} << 22;

class AttentionOp : public NativeOp {
 public:
  AttentionOp(const Node& node, int64_t opset) : node_(node), opset_(opset), scale_(node.attr_float("scale", 1.0f)) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* t[4] = {nullptr, nullptr, nullptr, nullptr};
    for (size_t i = 0; i < inputs.size() && i < 4; ++i) {
      if (!inputs[i]) continue;
      const Value& p = inputs[i]->as_plain();
      if (!p.is_tensor() || p.tensor.dtype() != DType::kFloat32) return run_reference(node_, opset_, inputs, outputs);
      t[i] = &p.tensor;
    }
    if (!t[0] || !t[1] || !t[2]) return run_reference(node_, opset_, inputs, outputs);
    Expected<AttentionLayout> layout = attention_layout(node_, *t[0], *t[1], *t[2], t[3]);
    if (!layout.ok()) return layout.status();
    const AttentionLayout& a = *layout;
    if (a.q_len == 0 || a.kv_len == 0 || a.batch == 0) return run_reference(node_, opset_, inputs, outputs);
    Tensor y = plain_output_tensor(DType::kFloat32, a.out_dims);
    const float* q = t[0]->data<float>();
    const float* k = t[1]->data<float>();
    const float* v = t[2]->data<float>();
    const float* mask = t[3] ? t[3]->data<float>() : nullptr;
    float* out = y.data<float>();
    const int64_t pairs = a.batch * a.heads;
    // Query rows per item: a block's scores within kScoreBlockFloats and its work within
    // kItemMacs, at least one row (a row's work is bounded by K's size).
    const int64_t row_macs = a.kv_len * (a.dk + a.dv);
    const int64_t rows = std::max<int64_t>(
        1, std::min({a.q_len, kScoreBlockFloats / a.kv_len, kItemMacs / std::max<int64_t>(row_macs, 1)}));
    const int64_t blocks = (a.q_len + rows - 1) / rows;
    const int64_t items = pairs * blocks;
    const int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), items));
    // Every thread's scores block, allocated here on the run's thread: charged to its memory
    // limit (bad_alloc past it, which the program reports as kResourceExhausted).
    Tensor scratch = pooled_tensor(DType::kFloat32, {threads, rows * a.kv_len});
    const RunContext* context = current_run_context();  // OpenMP's threads have none installed
    std::atomic<bool> stop{false};
    std::mutex mu;
    Status interrupted;
    std::atomic<int> failed{static_cast<int>(dnnl_success)};
#pragma omp parallel num_threads(threads)
    {
      float* scores = scratch.data<float>() + omp_get_thread_num() * rows * a.kv_len;
#pragma omp for schedule(static)
      for (int64_t item = 0; item < items; ++item) {
        if (stop.load(std::memory_order_relaxed)) continue;
        if (context) {
          if (Status st = context->check(); !st.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            if (interrupted.ok()) interrupted = st;
            stop = true;
            continue;
          }
        }
        const int64_t pair = item / blocks, l0 = (item % blocks) * rows;
        const int64_t n = std::min(rows, a.q_len - l0);
        const int64_t b = pair / a.heads, h = pair % a.heads;
        const float* qh = q + b * a.q_batch + l0 * a.q_row + h * a.dk;
        const float* kh = k + b * a.k_batch + h * a.dk;
        const float* vh = v + b * a.v_batch + h * a.dv;
        float* oh = out + b * a.o_batch + l0 * a.o_row + h * a.dv;
        // [n, dk] x [S, dk]^T -> [n, S]; K^T is read through transb, not materialised.
        dnnl_status_t st =
            dnnl_sgemm('N', 'T', n, a.kv_len, a.dk, scale_, qh, a.q_row, kh, a.k_row, 0.0f, scores, a.kv_len);
        for (int64_t l = 0; l < n && st == dnnl_success; ++l) {
          float* row = scores + l * a.kv_len;
          if (mask) add_mask_row(row, mask, a, b, h, l0 + l);
          softmax_row(row, a.kv_len);
        }
        // [n, S] x [S, dv] -> the head's columns of the output rows.
        if (st == dnnl_success) {
          st = dnnl_sgemm('N', 'N', n, a.dv, a.kv_len, 1.0f, scores, a.kv_len, vh, a.v_row, 0.0f, oh, a.o_row);
        }
        if (st != dnnl_success) {
          failed = static_cast<int>(st);
          stop = true;
        }
      }
    }
    if (!interrupted.ok()) return interrupted;
    if (failed != static_cast<int>(dnnl_success)) {
      return node_.error(StatusCode::kRuntimeError, "oneDNN sgemm failed with status ", failed.load(),
                         " (expected dnnl_success = 0)");
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
  float scale_;
};

}  // namespace

std::unique_ptr<NativeOp> make_attention_op(const Node& node, int64_t opset, const Graph&) {
  if (node.inputs.size() < 3 || node.attr_int("num_heads", 0) <= 0) return nullptr;  // the reference names the error
  return std::make_unique<AttentionOp>(node, opset);
}

void register_attention_ops(NativeOpTable& t) {
  t.add({"pyflame_rt", "MultiHeadAttention", 1, kNativeAnyOpset, {DType::kFloat32}, make_attention_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
