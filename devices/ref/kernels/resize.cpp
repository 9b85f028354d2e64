// Reference kernels: Resize (opsets 10-13+) and the deprecated Upsample.
//
// Separable N-d interpolation: for each output coordinate and axis, the coordinate transform
// gives a source position x; the 2 (nearest/linear) or 4 (cubic) source points around it get
// coefficients, edges are clamped, and the output is the weighted sum over all axes' points.
// Points use base = ceil(x) - 1 and ratio = x - base in (0, 1], the convention that makes an
// integral x land exactly on its source point for every mode.
#include <cmath>
#include <string>

#include "devices/ref/kernel_groups.h"
#include "devices/ref/kernel_util.h"
#include "devices/resize_coordinate.h"
#include "devices/run_interrupt.h"
#include "graph/memory_budget.h"

namespace pyflame_rt {

namespace {

struct ResizeConfig {
  std::string mode = "nearest";
  std::string coord = "half_pixel";
  std::string nearest_mode = "round_prefer_floor";
  double cubic_a = -0.75;
  bool exclude_outside = false;
  double extrapolation = 0;
};

std::vector<double> coefficients(const ResizeConfig& c, double ratio) {
  if (c.mode == "nearest") {
    if (ratio == 1.0) return {0, 1};
    if (c.nearest_mode == "round_prefer_ceil") return {ratio < 0.5 ? 1.0 : 0.0, ratio >= 0.5 ? 1.0 : 0.0};
    if (c.nearest_mode == "floor") return {1, 0};
    if (c.nearest_mode == "ceil") return {0, 1};
    return {ratio <= 0.5 ? 1.0 : 0.0, ratio > 0.5 ? 1.0 : 0.0};  // round_prefer_floor
  }
  if (c.mode == "linear") return {1 - ratio, ratio};
  double A = c.cubic_a, r = ratio, s = 1 - ratio;
  return {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A,
          ((A + 2) * r - (A + 3)) * r * r + 1,
          ((A + 2) * s - (A + 3)) * s * s + 1,
          ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A};
}

// Source position of output index `o` on one axis.
double source_coordinate(const ResizeConfig& c, int64_t o, int64_t in_len, int64_t out_len, double scale,
                         double roi_start, double roi_end) {
  double x = static_cast<double>(o);
  if (c.coord == "tf_crop_and_resize") {
    double span = static_cast<double>(in_len - 1);
    return out_len > 1 ? roi_start * span + x * (roi_end - roi_start) * span / static_cast<double>(out_len - 1)
                       : 0.5 * (roi_start + roi_end) * span;
  }
  return resize_source_position(c.coord, o, in_len, out_len, scale);  // in float, as ONNX Runtime
}

// Per axis and output index: source indices (clamped) and weights; `outside` marks positions
// that tf_crop_and_resize fills with the extrapolation value.
struct AxisTaps {
  std::vector<std::vector<int64_t>> index;
  std::vector<std::vector<double>> weight;
  std::vector<bool> outside;
};

AxisTaps axis_taps(const ResizeConfig& c, int64_t in_len, int64_t out_len, double scale, double roi_start,
                   double roi_end) {
  AxisTaps t;
  for (int64_t o = 0; o < out_len; ++o) {
    double x = source_coordinate(c, o, in_len, out_len, scale, roi_start, roi_end);
    t.outside.push_back(c.coord == "tf_crop_and_resize" && (x < 0 || x > static_cast<double>(in_len - 1)));
    double base = std::ceil(x) - 1;
    double ratio = x - base;
    std::vector<double> w = coefficients(c, ratio);
    int64_t first = static_cast<int64_t>(base) - (w.size() == 4 ? 1 : 0);
    std::vector<int64_t> idx;
    double total = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      int64_t i = first + static_cast<int64_t>(k);
      if (c.exclude_outside && (i < 0 || i >= in_len)) w[k] = 0;
      total += w[k];
      idx.push_back(std::min(std::max<int64_t>(i, 0), in_len - 1));
    }
    if (c.exclude_outside && total != 0) for (double& v : w) v /= total;
    t.index.push_back(idx);
    t.weight.push_back(w);
  }
  return t;
}

void prune_zero_taps(std::vector<AxisTaps>& taps) {
  for (const AxisTaps& t : taps) {
    for (const auto& w : t.weight) {
      for (double v : w) {
        if (!std::isfinite(v)) return;
      }
    }
  }
  for (AxisTaps& t : taps) {
    for (size_t o = 0; o < t.weight.size(); ++o) {
      std::vector<double>& w = t.weight[o];
      std::vector<int64_t>& idx = t.index[o];
      size_t kept = 0;
      for (size_t k = 0; k < w.size(); ++k) {
        if (w[k] == 0) continue;
        w[kept] = w[k];
        idx[kept] = idx[k];
        ++kept;
      }
      if (kept == 0) kept = 1;  // all 0 (exclude_outside with every tap outside): the sum is 0
      w.resize(kept);
      idx.resize(kept);
    }
  }
}

Status resize_impl(KernelContext& ctx, const Tensor& x, std::vector<double> scales, Dims sizes, std::vector<double> roi,
                   const ResizeConfig& cfg) {
  size_t rank = x.rank();
  if (sizes.empty()) {
    if (scales.size() != rank) {
      return ctx.error(StatusCode::kInvalidArgument, "scales has ", scales.size(), " entries, input rank is ", rank);
    }
    for (size_t d = 0; d < rank; ++d) {
      if (!(scales[d] > 0) || !std::isfinite(scales[d])) {
        return ctx.error(StatusCode::kInvalidArgument, "scales must be positive and finite, got ", scales[d]);
      }
      sizes.push_back(int64_from_double(std::floor(static_cast<double>(x.dim(d)) * scales[d])));
    }
  } else {
    if (sizes.size() != rank) {
      return ctx.error(StatusCode::kInvalidArgument, "sizes has ", sizes.size(), " entries, input rank is ", rank);
    }
    scales.clear();
    for (size_t d = 0; d < rank; ++d) scales.push_back(static_cast<double>(sizes[d]) / static_cast<double>(x.dim(d)));
  }
  if (roi.size() != 2 * rank) {
    roi.assign(2 * rank, 0.0);
    for (size_t d = 0; d < rank; ++d) roi[rank + d] = 1.0;
  }
  // Sizes come from the model's scales or sizes (1e30 saturates to 2^63 - 1): the output and
  // the per-axis taps are charged to the run's budget before either exists, and an empty output
  // is not walked (its other axes may be huge). A timeout in kernel_run before.
  for (int64_t s : sizes) {
    if (s < 0) return ctx.error(StatusCode::kInvalidArgument, "output sizes ", dims_to_string(sizes), " have a negative entry");
  }
  if (num_elements(sizes) == 0) {
    ctx.set_output(0, Tensor(x.dtype(), sizes));
    return Status::OK();
  }
  if (x.numel() == 0) {  // the taps would index an empty input (ASan, kernel_run stop 16)
    return ctx.error(StatusCode::kInvalidArgument, "input ", dims_to_string(x.dims()), " is empty but output sizes ",
                     dims_to_string(sizes), " are not: there is nothing to sample");
  }
  int64_t tap_count = 0;
  if (!checked_sum(sizes, &tap_count)) {
    return ctx.error(StatusCode::kInvalidArgument, "output sizes ", dims_to_string(sizes), " sum past int64");
  }
  // One tap: an index and a weight vector of up to 4 entries each, and their flat copy below.
  constexpr size_t kTapBytes =
      2 * sizeof(std::vector<double>) + sizeof(size_t) + 2 * 4 * (sizeof(double) + sizeof(int64_t));
  ScratchCharge charge_y(num_elements(sizes), dtype_size(x.dtype()), "Resize's output");
  ScratchCharge charge_taps(tap_count, kTapBytes, "Resize's taps");
  std::vector<AxisTaps> taps;
  for (size_t d = 0; d < rank; ++d) taps.push_back(axis_taps(cfg, x.dim(d), sizes[d], scales[d], roi[d], roi[rank + d]));
  // A tap of weight 0 adds nothing (the sum below skips a product of 0), but the walk visits
  // every combination of every axis' taps: 2^rank per output element for nearest, where one is
  // taken (an Upsample of 0.9 M elements ran past kernel_run's 2 s deadline, at creation and
  // again in the run). Drop them, keeping one per position, when every weight is finite: then
  // a product is 0 exactly when one of its factors is (0 x inf would be NaN and is kept).
  prune_zero_taps(taps);
  Tensor y(x.dtype(), sizes);
  std::vector<int64_t> in_strides = strides_of(x.dims());
  // The taps flattened per axis (output index o's taps are [first[o], first[o + 1])), each
  // index premultiplied by its input stride: the walk below then reads plain arrays, and the
  // input and output through their own type, not a dtype switch per element. The sum is the
  // same, term by term and in the same order, as a walk over the AxisTaps.
  std::vector<std::vector<size_t>> first(rank);
  std::vector<std::vector<int64_t>> offset(rank);
  std::vector<std::vector<double>> weight(rank);
  bool any_outside = false;
  bool one_tap = true;  // every position of every axis has one tap (nearest, after pruning)
  for (size_t d = 0; d < rank; ++d) {
    const AxisTaps& t = taps[d];
    first[d].reserve(t.weight.size() + 1);
    for (size_t o = 0; o < t.weight.size(); ++o) {
      first[d].push_back(offset[d].size());
      for (size_t k = 0; k < t.weight[o].size(); ++k) {
        offset[d].push_back(t.index[o][k] * in_strides[d]);
        weight[d].push_back(t.weight[o][k]);
      }
      any_outside |= t.outside[o];
    }
    first[d].push_back(offset[d].size());
    one_tap &= offset[d].size() == t.weight.size();
  }
  // Up to 64 MB of output at up to 4^rank taps each: seconds at -O1 (Upsample by [253, 255]
  // timed out in kernel_run, while constant folding, whose 5 s bound the kernel never read), and
  // one output element of a rank-20 cubic Resize has 4^20 taps: the run's deadline is read
  // along the taps, not only between outputs.
  InterruptPoll poll;
  const int64_t step_work = static_cast<int64_t>(rank) + 1;
  Status status = Status::OK();
  dispatch_numeric(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    auto read = [&](int64_t src) -> double {
      if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
        return static_cast<float>(xp[src]);  // as Tensor::value_as_double
      } else {
        return static_cast<double>(xp[src]);
      }
    };
    // Raw pointers in the walk: a checked vector index costs more than the sum itself in the
    // fuzz builds (_GLIBCXX_ASSERTIONS); every index below is in range by construction.
    std::vector<const size_t*> first_p(rank);
    std::vector<const int64_t*> offset_p(rank);
    std::vector<const double*> weight_p(rank);
    for (size_t d = 0; d < rank; ++d) {
      first_p[d] = first[d].data();
      offset_p[d] = offset[d].data();
      weight_p[d] = weight[d].data();
    }
    const size_t* const* F = first_p.data();
    const int64_t* const* OFF = offset_p.data();
    const double* const* W = weight_p.data();
    auto store = [&](int64_t f, double acc) {
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
        // Rounded, then saturated (cubic taps overshoot; an extrapolation_value is any float:
        // 1.8e19 into uint64 was undefined; UBSan, kernel_run).
        yp[f] = from_double<T>(std::nearbyint(acc));
      } else {
        yp[f] = from_double<T>(acc);
      }
    };
    const int64_t total = y.numel();
    if (one_tap && !any_outside && rank > 0) {
      // One tap per axis (nearest): a gather, row by row along the last axis. The weight is
      // the same product, in the same order, as the general walk's.
      const int64_t inner = sizes[rank - 1];
      const int64_t rows = total / inner;
      const Dims outer_sizes(sizes.begin(), sizes.end() - 1);
      std::vector<int64_t> row(rank - 1, 0);
      const double* w_last = W[rank - 1];
      const int64_t* off_last = OFF[rank - 1];
      for (int64_t r = 0; r < rows; ++r) {
        status = poll.tick(inner * step_work);
        if (!status.ok()) return;
        double w_outer = 1;
        int64_t base = 0;
        for (size_t d = 0; d + 1 < rank; ++d) {
          w_outer *= W[d][row[d]];
          base += OFF[d][row[d]];
        }
        for (int64_t j = 0; j < inner; ++j) {
          const double w = w_outer * w_last[j];
          double acc = 0;
          if (w != 0) acc += w * read(base + off_last[j]);
          store(r * inner + j, acc);
        }
        next_index(row, outer_sizes);
      }
      return;
    }
    std::vector<int64_t> o(rank, 0);
    std::vector<size_t> k_v(rank, 0), k_end_v(rank, 0);
    size_t* k = k_v.data();
    size_t* k_end = k_end_v.data();
    for (int64_t f = 0; f < total; ++f) {
      status = poll.tick(step_work);
      if (!status.ok()) return;
      const int64_t* op = o.data();
      bool outside = false;
      if (any_outside) {
        for (size_t d = 0; d < rank; ++d) outside |= taps[d].outside[static_cast<size_t>(op[d])];
      }
      double acc = 0;
      if (outside) {
        acc = cfg.extrapolation;
      } else if (one_tap) {
        double w = 1;
        int64_t src = 0;
        for (size_t d = 0; d < rank; ++d) {
          const size_t kd = static_cast<size_t>(op[d]);  // tap kd is position kd's only one
          w *= W[d][kd];
          src += OFF[d][kd];
        }
        if (w != 0) acc += w * read(src);
      } else {
        // Sum over the product of each axis' taps.
        for (size_t d = 0; d < rank; ++d) {
          k[d] = F[d][op[d]];
          k_end[d] = F[d][op[d] + 1];
        }
        while (true) {
          status = poll.tick(step_work);
          if (!status.ok()) return;
          double w = 1;
          int64_t src = 0;
          for (size_t d = 0; d < rank; ++d) {
            w *= W[d][k[d]];
            src += OFF[d][k[d]];
          }
          if (w != 0) acc += w * read(src);
          size_t d = rank;
          while (d > 0) {
            --d;
            if (++k[d] < k_end[d]) break;
            k[d] = F[d][op[d]];
            if (d == 0) { d = rank + 1; break; }
          }
          if (d == rank + 1 || rank == 0) break;
        }
      }
      store(f, acc);
      next_index(o, sizes);
    }
  });
  RETURN_IF_ERROR(status);
  ctx.set_output(0, std::move(y));
  return Status::OK();
}

std::vector<double> as_doubles(const Tensor* t) {
  std::vector<double> v;
  if (t) for (int64_t i = 0; i < t->numel(); ++i) v.push_back(t->value_as_double(i));
  return v;
}

Status check_mode(const KernelContext& ctx, const std::string& mode) {
  if (mode == "nearest" || mode == "linear" || mode == "cubic") return Status::OK();
  return ctx.error(StatusCode::kInvalidArgument, "mode must be nearest, linear or cubic, got '", mode, "'");
}

Status resize_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Node& n = ctx.node();
  ResizeConfig cfg;
  cfg.mode = n.attr_string("mode", "nearest");
  RETURN_IF_ERROR(check_mode(ctx, cfg.mode));
  if (ctx.opset() < 11) {
    // Resize-10 is Upsample's semantics: asymmetric coordinates, nearest rounds down.
    cfg.coord = "asymmetric";
    cfg.nearest_mode = "floor";
    RETURN_IF_ERROR(ctx.require_input(1));
    return resize_impl(ctx, *ctx.input(0), as_doubles(ctx.input(1)), {}, {}, cfg);
  }
  cfg.coord = n.attr_string("coordinate_transformation_mode", "half_pixel");
  cfg.nearest_mode = n.attr_string("nearest_mode", "round_prefer_floor");
  cfg.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  cfg.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  // Only cubic has taps outside the input to exclude and renormalise over: a nearest or linear
  // tap outside was clamped by the CPU device and zeroed here (the two disagreed, kernel_run),
  // and ONNX's own reference divides by a zero sum. Refused as ONNX Runtime refuses it.
  if (cfg.exclude_outside && cfg.mode != "cubic") {
    return ctx.error(StatusCode::kInvalidArgument, "exclude_outside=1 needs mode 'cubic' (as in ONNX Runtime), got mode '",
                     cfg.mode, "'");
  }
  cfg.extrapolation = n.attr_float("extrapolation_value", 0.0f);
  std::vector<double> scales = as_doubles(ctx.input(2));
  Dims sizes;
  if (const Tensor* s = ctx.input(3)) sizes = s->to_int64_vector();
  if (!sizes.empty() && !scales.empty()) {
    return ctx.error(StatusCode::kInvalidArgument, "only one of scales and sizes may be given");
  }
  if (sizes.empty() && scales.empty()) {
    return ctx.error(StatusCode::kInvalidArgument, "one of scales (input 2) and sizes (input 3) is required");
  }
  return resize_impl(ctx, *ctx.input(0), scales, sizes, as_doubles(ctx.input(1)), cfg);
}

Status upsample_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  ResizeConfig cfg;
  cfg.mode = ctx.node().attr_string("mode", "nearest");
  if (cfg.mode == "bilinear") cfg.mode = "linear";
  RETURN_IF_ERROR(check_mode(ctx, cfg.mode));
  cfg.coord = "asymmetric";
  cfg.nearest_mode = "floor";
  std::vector<double> scales;
  if (ctx.opset() < 9) {
    for (float s : ctx.node().attr_floats("scales")) scales.push_back(s);
  } else {
    RETURN_IF_ERROR(ctx.require_input(1));
    scales = as_doubles(ctx.input(1));
  }
  return resize_impl(ctx, *ctx.input(0), scales, {}, {}, cfg);
}

}  // namespace

void register_resize_kernels(KernelRegistry& r) {
  r.add("", "Resize", resize_kernel);
  r.add("", "Upsample", upsample_kernel);
}

}  // namespace pyflame_rt
