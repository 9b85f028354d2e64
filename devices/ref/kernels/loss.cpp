// Reference kernels: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss over [N, C, d...]
// scores with [N, d...] integer targets, optional class weights, ignore_index and
// reduction none / sum / mean (mean divides by the summed weights when weights or
// ignore_index are in play, as the spec does).
#include <cmath>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

// loss[n, d] = -w[t] * logp[n, t, d]; returns the output per the reduction.
Status nll(KernelContext& ctx, const std::vector<double>& logp, const Dims& in_dims, const Tensor& target,
           const Tensor* weight, DType out_type, Tensor* out) {
  int64_t N = in_dims[0], C = in_dims[1], D = 1;
  for (size_t d = 2; d < in_dims.size(); ++d) D *= in_dims[d];
  Dims expect_target = {N};
  expect_target.insert(expect_target.end(), in_dims.begin() + 2, in_dims.end());
  if (target.dims() != expect_target) {
    return ctx.error(StatusCode::kInvalidArgument, "target shape ", dims_to_string(target.dims()), " must be ",
                     dims_to_string(expect_target), " for input ", dims_to_string(in_dims));
  }
  std::string reduction = ctx.node().attr_string("reduction", "mean");
  if (reduction != "none" && reduction != "sum" && reduction != "mean") {
    return ctx.error(StatusCode::kInvalidArgument, "reduction must be none, sum or mean, got '", reduction, "'");
  }
  bool has_ignore = ctx.node().has_attr("ignore_index");
  int64_t ignore = ctx.node().attr_int("ignore_index", 0);
  std::vector<double> loss(static_cast<size_t>(N * D));
  double weight_sum = 0, loss_sum = 0;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      int64_t t = target.value_as_int64(n * D + d);
      double w = 1;
      if (has_ignore && t == ignore) {
        w = 0;
      } else {
        if (t < 0 || t >= C) {
          return ctx.error(StatusCode::kInvalidArgument, "target ", t, " at position ", n * D + d,
                           " is outside [0, ", C, ")");
        }
        if (weight) w = weight->value_as_double(t);
      }
      double l = w == 0 ? 0.0 : -w * logp[static_cast<size_t>((n * C + t) * D + d)];
      loss[static_cast<size_t>(n * D + d)] = l;
      loss_sum += l;
      weight_sum += w;
    }
  }
  if (reduction == "none") {
    *out = convert_tensor(Tensor::from_vector<double>(target.dims(), loss), out_type);
  } else {
    double v = loss_sum;
    if (reduction == "mean") v = (weight || has_ignore) ? loss_sum / weight_sum : loss_sum / static_cast<double>(N * D);
    *out = convert_tensor(Tensor::from_vector<double>({}, {v}), out_type);
  }
  return Status::OK();
}

Status check_scores(const KernelContext& ctx, const Tensor& x) {
  if (!dtype_is_float(x.dtype())) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be a float type, got ", dtype_name(x.dtype()));
  }
  if (x.rank() < 2) return ctx.error(StatusCode::kInvalidArgument, "input must be [N, C, ...], got ", dims_to_string(x.dims()));
  return Status::OK();
}

Status nll_loss_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_scores(ctx, x));
  std::vector<double> logp(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) logp[static_cast<size_t>(i)] = x.value_as_double(i);
  Tensor out;
  RETURN_IF_ERROR(nll(ctx, logp, x.dims(), *ctx.input(1), ctx.input(2), x.dtype(), &out));
  ctx.set_output(0, std::move(out));
  return Status::OK();
}

Status softmax_cross_entropy_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(check_scores(ctx, x));
  int64_t N = x.dim(0), C = x.dim(1), D = x.numel() / std::max<int64_t>(N * C, 1);
  std::vector<double> logp(static_cast<size_t>(x.numel()));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t d = 0; d < D; ++d) {
      double mx = -INFINITY, sum = 0;
      for (int64_t c = 0; c < C; ++c) mx = std::max(mx, x.value_as_double((n * C + c) * D + d));
      for (int64_t c = 0; c < C; ++c) sum += std::exp(x.value_as_double((n * C + c) * D + d) - mx);
      for (int64_t c = 0; c < C; ++c) {
        int64_t f = (n * C + c) * D + d;
        logp[static_cast<size_t>(f)] = x.value_as_double(f) - mx - std::log(sum);
      }
    }
  }
  Tensor out;
  RETURN_IF_ERROR(nll(ctx, logp, x.dims(), *ctx.input(1), ctx.input(2), x.dtype(), &out));
  ctx.set_output(0, std::move(out));
  if (ctx.output_wanted(1)) ctx.set_output(1, convert_tensor(Tensor::from_vector<double>(x.dims(), logp), x.dtype()));
  return Status::OK();
}

}  // namespace

void register_loss_kernels(KernelRegistry& r) {
  r.add("", "NegativeLogLikelihoodLoss", nll_loss_kernel);
  r.add("", "SoftmaxCrossEntropyLoss", softmax_cross_entropy_kernel);
}

}  // namespace pyflame_rt
