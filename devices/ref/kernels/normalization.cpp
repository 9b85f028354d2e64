// Reference kernels: normalisations (BatchNormalization incl. training mode, Instance-,
// Layer- and MeanVarianceNormalization, LRN). Statistics are computed in double.
#include <cmath>

#include "devices/ref/kernel_groups.h"
#include "devices/run_interrupt.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {

namespace {

Status float_check(const KernelContext& ctx, const Tensor& x) {
  if (dtype_is_float(x.dtype())) return Status::OK();
  return ctx.error(StatusCode::kInvalidArgument, "input must be a float type, got ", dtype_name(x.dtype()));
}

Status per_channel(const KernelContext& ctx, const Tensor& t, int64_t c, const char* what) {
  if (t.numel() == c) return Status::OK();
  return ctx.error(StatusCode::kInvalidArgument, what, " has ", t.numel(), " elements, input has ", c, " channels");
}

Status batch_norm_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(5));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(float_check(ctx, x));
  if (x.rank() < 2) return ctx.error(StatusCode::kInvalidArgument, "input must be [N, C, ...], got ", dims_to_string(x.dims()));
  int64_t N = x.dim(0), C = x.dim(1), sp = x.numel() / std::max<int64_t>(N * C, 1);
  const char* names[] = {"scale", "B", "mean", "var"};
  for (size_t i = 1; i < 5; ++i) RETURN_IF_ERROR(per_channel(ctx, *ctx.input(i), C, names[i - 1]));
  double eps = ctx.node().attr_float("epsilon", 1e-5f), momentum = ctx.node().attr_float("momentum", 0.9f);
  // Before opset 9 the outputs tell the mode: running statistics asked for, training. An
  // optional output with an empty name is not asked for (the CPU device's native kernel, in
  // inference, ran a node with three empty ones; this kernel trained: kernel_run stop 24).
  bool stats_asked = false;
  for (size_t i = 1; i < ctx.node().outputs.size(); ++i) stats_asked |= ctx.output_wanted(i);
  bool training = ctx.opset() >= 14 ? ctx.node().attr_int("training_mode", 0) != 0 : stats_asked && ctx.opset() < 9;
  std::vector<double> mean(static_cast<size_t>(C)), var(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    mean[static_cast<size_t>(c)] = ctx.input(3)->value_as_double(c);
    var[static_cast<size_t>(c)] = ctx.input(4)->value_as_double(c);
  }
  std::vector<double> batch_mean(mean), batch_var(var);
  if (training) {
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t i = 0; i < sp; ++i) s += x.value_as_double((n * C + c) * sp + i);
      }
      double m = s / static_cast<double>(N * sp);
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t i = 0; i < sp; ++i) { double d = x.value_as_double((n * C + c) * sp + i) - m; s2 += d * d; }
      }
      batch_mean[static_cast<size_t>(c)] = m;
      batch_var[static_cast<size_t>(c)] = s2 / static_cast<double>(N * sp);
    }
  }
  Tensor y(x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t c = 0; c < C; ++c) {
        double scale = ctx.input(1)->value_as_double(c) / std::sqrt(batch_var[static_cast<size_t>(c)] + eps);
        double shift = ctx.input(2)->value_as_double(c) - batch_mean[static_cast<size_t>(c)] * scale;
        for (int64_t i = 0; i < sp; ++i) {
          int64_t f = (n * C + c) * sp + i;
          y.data<T>()[f] = from_double<T>(to_double(x.data<T>()[f]) * scale + shift);
        }
      }
    }
  });
  ctx.set_output(0, std::move(y));
  if (training) {
    std::vector<double> run_mean(static_cast<size_t>(C)), run_var(static_cast<size_t>(C));
    for (size_t c = 0; c < run_mean.size(); ++c) {
      run_mean[c] = mean[c] * momentum + batch_mean[c] * (1 - momentum);
      run_var[c] = var[c] * momentum + batch_var[c] * (1 - momentum);
    }
    DType mt = ctx.input(3)->dtype();
    if (ctx.output_wanted(1)) ctx.set_output(1, convert_tensor(Tensor::from_vector<double>({C}, run_mean), mt));
    if (ctx.output_wanted(2)) ctx.set_output(2, convert_tensor(Tensor::from_vector<double>({C}, run_var), mt));
  }
  return Status::OK();
}

// Normalises each of `rows` contiguous groups of `cols` values to zero mean / unit variance,
// then applies y = norm * scale[s] + bias[s] where s = index within the group (or channel).
Status instance_norm_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(float_check(ctx, x));
  if (x.rank() < 3) return ctx.error(StatusCode::kInvalidArgument, "input must be [N, C, spatial...], got ", dims_to_string(x.dims()));
  int64_t N = x.dim(0), C = x.dim(1), sp = x.numel() / std::max<int64_t>(N * C, 1);
  RETURN_IF_ERROR(per_channel(ctx, *ctx.input(1), C, "scale"));
  RETURN_IF_ERROR(per_channel(ctx, *ctx.input(2), C, "B"));
  double eps = ctx.node().attr_float("epsilon", 1e-5f);
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t nc = 0; nc < N * C; ++nc) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < sp; ++i) s += x.value_as_double(nc * sp + i);
    double m = s / static_cast<double>(sp);
    for (int64_t i = 0; i < sp; ++i) { double d = x.value_as_double(nc * sp + i) - m; s2 += d * d; }
    double inv = 1.0 / std::sqrt(s2 / static_cast<double>(sp) + eps);
    int64_t c = nc % C;
    for (int64_t i = 0; i < sp; ++i) {
      out[static_cast<size_t>(nc * sp + i)] = (x.value_as_double(nc * sp + i) - m) * inv * ctx.input(1)->value_as_double(c) +
                                              ctx.input(2)->value_as_double(c);
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(x.dims(), out), x.dtype()));
  return Status::OK();
}

Status layer_norm_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(float_check(ctx, x));
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", -1), static_cast<int64_t>(x.rank()), &axis));
  double eps = ctx.node().attr_float("epsilon", 1e-5f);
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < static_cast<int64_t>(x.rank()); ++d) (d < axis ? rows : cols) *= x.dim(static_cast<size_t>(d));
  Dims norm_dims(x.dims().begin() + axis, x.dims().end());
  const Tensor& scale = *ctx.input(1);
  const Tensor* bias = ctx.input(2);
  // Scale and bias broadcast to the normalized shape (X's dims from `axis`), one way: their
  // maps index them by it. A bias of [0, 1, 7, 3] (empty) for a normalized shape [7, 4, 4, 1]
  // was read out of bounds (outputs changed from run to run; kernel_run stop 18), and a scale
  // larger than that shape passed the two-way broadcast check.
  for (const Tensor* t : {&scale, bias}) {
    if (!t) continue;
    Dims b;
    RETURN_IF_ERROR(broadcast_dims(ctx, t->dims(), norm_dims, &b));
    if (b != norm_dims) {
      return ctx.error(StatusCode::kInvalidArgument, t == &scale ? "Scale " : "B ", dims_to_string(t->dims()),
                       " does not broadcast to the normalized shape ", dims_to_string(norm_dims), " (axis ", axis, ")");
    }
  }
  BroadcastIndexMap smap = broadcast_index_map(scale.dims(), norm_dims);
  BroadcastIndexMap bmap = bias ? broadcast_index_map(bias->dims(), norm_dims) : BroadcastIndexMap();
  std::vector<double> out(static_cast<size_t>(x.numel())), means(static_cast<size_t>(rows)), invs(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0, s2 = 0;
    for (int64_t c = 0; c < cols; ++c) s += x.value_as_double(r * cols + c);
    double m = s / static_cast<double>(cols);
    for (int64_t c = 0; c < cols; ++c) { double d = x.value_as_double(r * cols + c) - m; s2 += d * d; }
    double inv = 1.0 / std::sqrt(s2 / static_cast<double>(cols) + eps);
    means[static_cast<size_t>(r)] = m;
    invs[static_cast<size_t>(r)] = inv;
    for (int64_t c = 0; c < cols; ++c) {
      double v = (x.value_as_double(r * cols + c) - m) * inv * scale.value_as_double(smap[static_cast<size_t>(c)]);
      if (bias) v += bias->value_as_double(bmap[static_cast<size_t>(c)]);
      out[static_cast<size_t>(r * cols + c)] = v;
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(x.dims(), out), x.dtype()));
  Dims stat_dims = x.dims();
  for (size_t d = static_cast<size_t>(axis); d < stat_dims.size(); ++d) stat_dims[d] = 1;
  DType stash = DType::kFloat32;
  if (ctx.node().has_attr("stash_type")) {
    auto st = dtype_from_onnx(static_cast<int>(ctx.node().attr_int("stash_type", 1)));
    if (st.ok()) stash = *st;
  }
  if (ctx.output_wanted(1)) ctx.set_output(1, convert_tensor(Tensor::from_vector<double>(stat_dims, means), stash));
  if (ctx.output_wanted(2)) ctx.set_output(2, convert_tensor(Tensor::from_vector<double>(stat_dims, invs), stash));
  return Status::OK();
}

Status mvn_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(float_check(ctx, x));
  std::vector<int64_t> axes = ctx.node().attr_ints("axes", {0, 2, 3});
  std::vector<bool> reduced(x.rank(), false);
  for (int64_t a : axes) {
    int64_t ax = 0;
    RETURN_IF_ERROR(normalize_axis(ctx, a, static_cast<int64_t>(x.rank()), &ax));
    reduced[static_cast<size_t>(ax)] = true;
  }
  Dims kept;
  for (size_t d = 0; d < x.rank(); ++d) kept.push_back(reduced[d] ? 1 : x.dim(d));
  BroadcastIndexMap target = broadcast_index_map(kept, x.dims());  // input flat -> group
  int64_t groups = num_elements(kept);
  std::vector<double> sum(static_cast<size_t>(groups)), sq(static_cast<size_t>(groups));
  double per_group = static_cast<double>(x.numel()) / static_cast<double>(std::max<int64_t>(groups, 1));
  for (int64_t f = 0; f < x.numel(); ++f) {
    double v = x.value_as_double(f);
    sum[static_cast<size_t>(target[static_cast<size_t>(f)])] += v;
    sq[static_cast<size_t>(target[static_cast<size_t>(f)])] += v * v;
  }
  std::vector<double> out(static_cast<size_t>(x.numel()));
  for (int64_t f = 0; f < x.numel(); ++f) {
    size_t g = static_cast<size_t>(target[static_cast<size_t>(f)]);
    double m = sum[g] / per_group, var = sq[g] / per_group - m * m;
    out[static_cast<size_t>(f)] = (x.value_as_double(f) - m) / (std::sqrt(std::max(var, 0.0)) + 1e-9);
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(x.dims(), out), x.dtype()));
  return Status::OK();
}

Status lrn_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  RETURN_IF_ERROR(float_check(ctx, x));
  int64_t size = ctx.node().attr_int("size", 0);
  if (size <= 0) return ctx.error(StatusCode::kInvalidArgument, "size must be positive, got ", size);
  if (x.rank() < 2) {  // N and C are read below (a rank-0 input read past its dims: kernel_run)
    return ctx.error(StatusCode::kInvalidArgument, "input must be [N, C, ...] (rank >= 2), got ", dims_to_string(x.dims()));
  }
  double alpha = ctx.node().attr_float("alpha", 1e-4f), beta = ctx.node().attr_float("beta", 0.75f);
  double bias = ctx.node().attr_float("bias", 1.0f);
  int64_t N = x.dim(0), C = x.dim(1), sp = x.numel() / std::max<int64_t>(N * C, 1);
  int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  std::vector<double> out(static_cast<size_t>(x.numel()));
  // Each element sums a window of min(size, C) channels: numel x C when `size` is large (a
  // [1, 10^6, 1] input, 4 MB, is 10^12 steps). The run's deadline is read per channel plane.
  InterruptPoll poll;
  const int64_t plane_work = sp * (std::min(size, C) + 4) + 1;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      RETURN_IF_ERROR(poll.tick(plane_work));
      for (int64_t i = 0; i < sp; ++i) {
        double s = 0;
        for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
          double v = x.value_as_double((n * C + k) * sp + i);
          s += v * v;
        }
        int64_t f = (n * C + c) * sp + i;
        out[static_cast<size_t>(f)] = x.value_as_double(f) / std::pow(bias + alpha / static_cast<double>(size) * s, beta);
      }
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>(x.dims(), out), x.dtype()));
  return Status::OK();
}

}  // namespace

void register_normalization_kernels(KernelRegistry& r) {
  r.add("", "BatchNormalization", batch_norm_kernel);
  r.add("", "InstanceNormalization", instance_norm_kernel);
  r.add("", "LayerNormalization", layer_norm_kernel);
  r.add("", "MeanVarianceNormalization", mvn_kernel);
  r.add("", "LRN", lrn_kernel);
}

}  // namespace pyflame_rt
