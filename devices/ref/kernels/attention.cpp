// Reference kernel of pyflame_rt.MultiHeadAttention (layout and semantics: attention_layout.h),
// written as the textbook loops with double accumulation: the oracle the native kernel and
// the unfused graph are checked against, not a fast path.
#include <cmath>
#include <vector>

#include "devices/ref/kernel_groups.h"
#include "devices/run_interrupt.h"
#include "devices/ref/kernels/attention_layout.h"

namespace pyflame_rt {

namespace {

Status multi_head_attention(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& q = *ctx.input(0);
  const Tensor& k = *ctx.input(1);
  const Tensor& v = *ctx.input(2);
  const Tensor* mask = ctx.input(3);
  ASSIGN_OR_RETURN(AttentionLayout a, attention_layout(ctx.node(), q, k, v, mask));
  const double scale = ctx.node().attr_float("scale", 1.0f);
  const float* qd = q.data<float>();
  const float* kd = k.data<float>();
  const float* vd = v.data<float>();
  const float* md = mask ? mask->data<float>() : nullptr;
  Tensor y(DType::kFloat32, a.out_dims);
  float* yd = y.data<float>();
  std::vector<double> p(static_cast<size_t>(a.kv_len));
  // batch x heads x q_len x kv_len x (dk + dv): past the tensors' sizes (Q and K of 10^6 rows
  // each, 64 MB, are 10^12 dot products). The run's deadline is read per query row.
  InterruptPoll poll;
  const int64_t row_work = a.kv_len * (a.dk + a.dv + 2) + 1;
  for (int64_t b = 0; b < a.batch; ++b) {
    for (int64_t h = 0; h < a.heads; ++h) {
      for (int64_t l = 0; l < a.q_len; ++l) {
        RETURN_IF_ERROR(poll.tick(row_work));
        const float* qrow = qd + b * a.q_batch + l * a.q_row + h * a.dk;
        double max = -INFINITY;
        for (int64_t s = 0; s < a.kv_len; ++s) {
          const float* krow = kd + b * a.k_batch + s * a.k_row + h * a.dk;
          double dot = 0;
          for (int64_t d = 0; d < a.dk; ++d) dot += static_cast<double>(qrow[d]) * krow[d];
          double x = scale * dot;
          if (md) x += md[b * a.mask_stride[0] + h * a.mask_stride[1] + l * a.mask_stride[2] + s * a.mask_stride[3]];
          p[static_cast<size_t>(s)] = x;
          max = std::max(max, x);
        }
        double sum = 0;
        for (double& x : p) sum += (x = std::exp(x - max));
        float* yrow = yd + b * a.o_batch + l * a.o_row + h * a.dv;
        for (int64_t d = 0; d < a.dv; ++d) {
          double acc = 0;
          for (int64_t s = 0; s < a.kv_len; ++s) acc += p[static_cast<size_t>(s)] * vd[b * a.v_batch + s * a.v_row + h * a.dv + d];
          yrow[d] = static_cast<float>(acc / sum);
        }
      }
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

}  // namespace

void register_attention_kernels(KernelRegistry& r) { r.add("pyflame_rt", "MultiHeadAttention", multi_head_attention); }

}  // namespace pyflame_rt
