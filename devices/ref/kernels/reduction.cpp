// Reference kernels: reductions (Reduce*, ArgMax/ArgMin), Softmax/LogSoftmax/Hardmax, CumSum
// and TopK. Float reductions accumulate in double.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

// Splits dims into the reduced and kept sets and iterates: for each output element, visits
// the input elements that reduce into it.
struct ReducePlan {
  Dims out_dims;          // with keepdims applied
  std::vector<bool> reduced;
  int64_t out_count = 1;
};

Status plan_reduce(const KernelContext& ctx, const Tensor& x, std::vector<int64_t> axes, bool keepdims,
                   bool noop_with_empty, ReducePlan* p) {
  int64_t rank = static_cast<int64_t>(x.rank());
  p->reduced.assign(x.rank(), axes.empty() && !noop_with_empty);
  for (int64_t a : axes) {
    int64_t ax = 0;
    RETURN_IF_ERROR(normalize_axis(ctx, a, rank, &ax));
    p->reduced[static_cast<size_t>(ax)] = true;
  }
  p->out_dims.clear();
  for (size_t d = 0; d < x.rank(); ++d) {
    if (!p->reduced[d]) p->out_dims.push_back(x.dim(d));
    else if (keepdims) p->out_dims.push_back(1);
  }
  p->out_count = num_elements(p->out_dims);
  return Status::OK();
}

// For each input flat index, the flat index of the output element it reduces into.
std::vector<int64_t> reduce_targets(const Tensor& x, const ReducePlan& p) {
  std::vector<int64_t> target(static_cast<size_t>(x.numel()));
  std::vector<int64_t> idx(x.rank(), 0);
  Dims kept;
  for (size_t d = 0; d < x.rank(); ++d) kept.push_back(p.reduced[d] ? 1 : x.dim(d));
  std::vector<int64_t> kept_strides = strides_of(kept);
  for (int64_t f = 0; f < x.numel(); ++f) {
    int64_t t = 0;
    for (size_t d = 0; d < x.rank(); ++d) if (!p.reduced[d]) t += idx[d] * kept_strides[d];
    target[static_cast<size_t>(f)] = t;
    next_index(idx, x.dims());
  }
  return target;
}

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

// Integer Sum/Prod/Max/Min/L1/SumSquare/Mean in the element type, exactly, wrapping on overflow
// as ONNX Runtime (and the CPU device's int_reduce_op) compute them; Mean truncates the wrapped
// sum over the count (0 for no element). In double, int64 values past 2^53 lost precision and
// sums saturated: the two devices disagreed near the limits (kernel_run).
template <Reduce kOp>
Tensor reduce_integers(const Tensor& x, const ReducePlan& p, const std::vector<int64_t>& target) {
  Tensor y(x.dtype(), p.out_dims);
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      T init = 0;
      if (kOp == Reduce::kProd) init = 1;
      if (kOp == Reduce::kMax) init = std::numeric_limits<T>::lowest();
      if (kOp == Reduce::kMin) init = std::numeric_limits<T>::max();
      std::vector<T> acc(static_cast<size_t>(p.out_count), init);
      std::vector<int64_t> count(acc.size(), 0);
      const T* src = x.data<T>();
      for (int64_t f = 0; f < x.numel(); ++f) {
        const size_t t = static_cast<size_t>(target[static_cast<size_t>(f)]);
        const T v = src[f];
        T& a = acc[t];
        switch (kOp) {
          case Reduce::kSum: case Reduce::kMean: a = wrapping_add(a, v); break;
          case Reduce::kProd: a = wrapping_mul(a, v); break;
          case Reduce::kMax: a = std::max(a, v); break;
          case Reduce::kMin: a = std::min(a, v); break;
          case Reduce::kL1: a = wrapping_add(a, v < 0 ? wrapping_sub(T{0}, v) : v); break;
          case Reduce::kSumSquare: a = wrapping_add(a, wrapping_mul(v, v)); break;
          default: break;
        }
        ++count[t];
      }
      for (size_t t = 0; t < acc.size(); ++t) {
        T a = acc[t];
        if (kOp == Reduce::kMean) {
          // MIN / -1 cannot occur: the count is positive.
          a = count[t] ? static_cast<T>(a / static_cast<T>(count[t] > std::numeric_limits<T>::max()
                                                                ? std::numeric_limits<T>::max()
                                                                : count[t]))
                       : T{0};
        }
        y.data<T>()[t] = a;
      }
    }
  });
  return y;
}

template <Reduce kOp>
Status reduce_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
  bool noop = ctx.node().attr_int("noop_with_empty_axes", 0) != 0;
  // ReduceSum took axes as an input from opset 13, the others from opset 18.
  bool axes_input = kOp == Reduce::kSum ? ctx.opset() >= 13 : ctx.opset() >= 18;
  std::vector<int64_t> axes = axes_input ? (ctx.input(1) ? ctx.input(1)->to_int64_vector() : std::vector<int64_t>{})
                                         : ctx.node().attr_ints("axes");
  if (noop && axes.empty()) {
    ctx.set_output(0, x);
    return Status::OK();
  }
  ReducePlan p;
  RETURN_IF_ERROR(plan_reduce(ctx, x, axes, keepdims, false, &p));
  std::vector<int64_t> target = reduce_targets(x, p);
  if constexpr (kOp == Reduce::kSum || kOp == Reduce::kProd || kOp == Reduce::kMax || kOp == Reduce::kMin ||
                kOp == Reduce::kL1 || kOp == Reduce::kSumSquare || kOp == Reduce::kMean) {
    if (dtype_is_integer(x.dtype())) {
      ctx.set_output(0, reduce_integers<kOp>(x, p, target));
      return Status::OK();
    }
  }
  double init = 0;
  if (kOp == Reduce::kMax) init = -std::numeric_limits<double>::infinity();
  if (kOp == Reduce::kMin) init = std::numeric_limits<double>::infinity();
  if (kOp == Reduce::kProd) init = 1;
  std::vector<double> acc(static_cast<size_t>(p.out_count), init);
  std::vector<int64_t> count(static_cast<size_t>(p.out_count), 0);
  bool integral = dtype_is_integer(x.dtype());
  std::vector<double> xmax;
  if (kOp == Reduce::kLogSumExp) {  // subtract the max for stability
    xmax.assign(acc.size(), -std::numeric_limits<double>::infinity());
    for (int64_t f = 0; f < x.numel(); ++f) {
      double& m = xmax[static_cast<size_t>(target[static_cast<size_t>(f)])];
      m = std::max(m, x.value_as_double(f));
    }
  }
  for (int64_t f = 0; f < x.numel(); ++f) {
    size_t t = static_cast<size_t>(target[static_cast<size_t>(f)]);
    double v = x.value_as_double(f);
    double& a = acc[t];
    switch (kOp) {
      case Reduce::kSum: case Reduce::kMean: case Reduce::kLogSum: a += v; break;
      case Reduce::kMax: a = std::isnan(v) || std::isnan(a) ? NAN : std::max(a, v); break;
      case Reduce::kMin: a = std::isnan(v) || std::isnan(a) ? NAN : std::min(a, v); break;
      case Reduce::kProd: a *= v; break;
      case Reduce::kL1: a += std::fabs(v); break;
      case Reduce::kL2: case Reduce::kSumSquare: a += v * v; break;
      case Reduce::kLogSumExp: a += std::exp(v - xmax[t]); break;
    }
    ++count[t];
  }
  for (size_t t = 0; t < acc.size(); ++t) {
    double& a = acc[t];
    switch (kOp) {
      case Reduce::kMean: a = count[t] ? a / static_cast<double>(count[t]) : NAN; break;
      case Reduce::kL2: a = std::sqrt(a); break;
      case Reduce::kLogSum: a = std::log(a); break;
      case Reduce::kLogSumExp: a = count[t] ? std::log(a) + xmax[t] : -INFINITY; break;
      default: break;
    }
    if (integral && kOp == Reduce::kMean) a = std::trunc(a);
  }
  Tensor y(x.dtype(), p.out_dims);
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (size_t t = 0; t < acc.size(); ++t) {
      // Integers here are the L2/LogSum/LogSumExp results only: past T's range they saturate.
      y.data<T>()[t] = from_double<T>(acc[t]);
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

template <bool kMax>
Status arg_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
  bool last = ctx.node().attr_int("select_last_index", 0) != 0;
  int64_t len = x.dim(static_cast<size_t>(axis));
  if (len == 0) return ctx.error(StatusCode::kInvalidArgument, "cannot take Arg", kMax ? "Max" : "Min", " over an empty axis");
  int64_t outer = outer_size(x.dims(), axis), inner = inner_size(x.dims(), axis);
  Dims out_dims = x.dims();
  if (keepdims) out_dims[static_cast<size_t>(axis)] = 1;
  else out_dims.erase(out_dims.begin() + axis);
  Tensor y(DType::kInt64, out_dims);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      double bv = x.value_as_double(o * len * inner + i);
      for (int64_t k = 1; k < len; ++k) {
        double v = x.value_as_double((o * len + k) * inner + i);
        bool better = kMax ? (last ? v >= bv : v > bv) : (last ? v <= bv : v < bv);
        if (better) { best = k; bv = v; }
      }
      y.data<int64_t>()[o * inner + i] = best;
    }
  }
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

// Softmax family. Before opset 13 the input is viewed as 2-D [outer, inner] split at `axis`
// (default 1); from 13 the op runs along one axis (default -1).
enum class SoftKind { kSoftmax, kLogSoftmax, kHardmax };

template <SoftKind kKind>
Status softmax_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  if (!dtype_is_float(x.dtype())) {
    return ctx.error(StatusCode::kInvalidArgument, "input must be a float type, got ", dtype_name(x.dtype()));
  }
  bool legacy = ctx.opset() < 13;
  int64_t rank = static_cast<int64_t>(x.rank());
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", legacy ? 1 : -1), std::max<int64_t>(rank, 1), &axis));
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t d = 0; d < rank; ++d) {
    int64_t n = x.dim(static_cast<size_t>(d));
    if (d < axis) outer *= n;
    else if (legacy || d == axis) len *= n;
    else inner *= n;
  }
  Tensor y(x.dtype(), x.dims());
  std::vector<double> row(static_cast<size_t>(len));
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        auto at = [&](int64_t k) { return (o * len + k) * inner + i; };
        double mx = -INFINITY;
        int64_t arg = 0;
        for (int64_t k = 0; k < len; ++k) {
          row[static_cast<size_t>(k)] = to_double(in[at(k)]);
          if (row[static_cast<size_t>(k)] > mx) { mx = row[static_cast<size_t>(k)]; arg = k; }
        }
        if (kKind == SoftKind::kHardmax) {
          for (int64_t k = 0; k < len; ++k) out[at(k)] = from_double<T>(k == arg ? 1.0 : 0.0);
          continue;
        }
        double sum = 0;
        for (int64_t k = 0; k < len; ++k) sum += std::exp(row[static_cast<size_t>(k)] - mx);
        for (int64_t k = 0; k < len; ++k) {
          double v = row[static_cast<size_t>(k)] - mx;
          out[at(k)] = from_double<T>(kKind == SoftKind::kSoftmax ? std::exp(v) / sum : v - std::log(sum));
        }
      }
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status cumsum_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.input(1)->value_as_int64(0), static_cast<int64_t>(x.rank()), &axis));
  bool exclusive = ctx.node().attr_int("exclusive", 0) != 0, reverse = ctx.node().attr_int("reverse", 0) != 0;
  int64_t len = x.dim(static_cast<size_t>(axis)), outer = outer_size(x.dims(), axis), inner = inner_size(x.dims(), axis);
  Tensor y(x.dtype(), x.dims());
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        double acc = 0;
        for (int64_t s = 0; s < len; ++s) {
          int64_t k = reverse ? len - 1 - s : s;
          int64_t f = (o * len + k) * inner + i;
          double v = to_double(in[f]);
          if (!exclusive) acc += v;
          out[f] = from_double<T>(acc);
          if (exclusive) acc += v;
        }
      }
    }
  });
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

Status topk_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  int64_t k = ctx.opset() < 10 ? ctx.node().attr_int("k", 1) : (ctx.input(1) ? ctx.input(1)->value_as_int64(0) : -1);
  int64_t axis = 0;
  RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", -1), static_cast<int64_t>(x.rank()), &axis));
  bool largest = ctx.node().attr_int("largest", 1) != 0;
  int64_t len = x.dim(static_cast<size_t>(axis));
  if (k < 0 || k > len) return ctx.error(StatusCode::kInvalidArgument, "k = ", k, " must be in [0, ", len, "]");
  int64_t outer = outer_size(x.dims(), axis), inner = inner_size(x.dims(), axis);
  Dims out_dims = x.dims();
  out_dims[static_cast<size_t>(axis)] = k;
  Tensor values(x.dtype(), out_dims), indices(DType::kInt64, out_dims);
  std::vector<int64_t> order(static_cast<size_t>(len));
  // n log n in the input: one row's sort is not interrupted, the run's deadline is read per row.
  InterruptPoll poll;
  int64_t log_len = 1;
  while (log_len < 62 && (int64_t{1} << log_len) < len) ++log_len;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      RETURN_IF_ERROR(poll.tick(8 * len * log_len + 1));
      auto at = [&](int64_t j) { return (o * len + j) * inner + i; };
      std::iota(order.begin(), order.end(), 0);
      // Ties keep the lower index first, whichever direction.
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        double va = x.value_as_double(at(a)), vb = x.value_as_double(at(b));
        return largest ? va > vb : va < vb;
      });
      for (int64_t j = 0; j < k; ++j) {
        int64_t dst = (o * k + j) * inner + i;
        copy_elements(x, at(order[static_cast<size_t>(j)]), values, dst, 1);
        indices.data<int64_t>()[dst] = order[static_cast<size_t>(j)];
      }
    }
  }
  ctx.set_output(0, std::move(values));
  ctx.set_output(1, std::move(indices));
  return Status::OK();
}

}  // namespace

void register_reduction_kernels(KernelRegistry& r) {
  r.add("", "ReduceSum", reduce_kernel<Reduce::kSum>);
  r.add("", "ReduceMean", reduce_kernel<Reduce::kMean>);
  r.add("", "ReduceMax", reduce_kernel<Reduce::kMax>);
  r.add("", "ReduceMin", reduce_kernel<Reduce::kMin>);
  r.add("", "ReduceProd", reduce_kernel<Reduce::kProd>);
  r.add("", "ReduceL1", reduce_kernel<Reduce::kL1>);
  r.add("", "ReduceL2", reduce_kernel<Reduce::kL2>);
  r.add("", "ReduceLogSum", reduce_kernel<Reduce::kLogSum>);
  r.add("", "ReduceLogSumExp", reduce_kernel<Reduce::kLogSumExp>);
  r.add("", "ReduceSumSquare", reduce_kernel<Reduce::kSumSquare>);
  r.add("", "ArgMax", arg_kernel<true>);
  r.add("", "ArgMin", arg_kernel<false>);
  r.add("", "Softmax", softmax_kernel<SoftKind::kSoftmax>);
  r.add("", "LogSoftmax", softmax_kernel<SoftKind::kLogSoftmax>);
  r.add("", "Hardmax", softmax_kernel<SoftKind::kHardmax>);
  r.add("", "CumSum", cumsum_kernel);
  r.add("", "TopK", topk_kernel);
}

}  // namespace pyflame_rt
