// Reference kernels: detection and sampling ops (NonMaxSuppression, RoiAlign, GridSample) and
// Unique. These sit apart from the conv/pool kernels because they index boxes and grids
// rather than sliding windows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "devices/ref/kernel_groups.h"
#include "devices/nms_box.h"
#include "devices/ref/kernel_util.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {

namespace {

using Box = NmsBox;

Box read_box(const Tensor& boxes, int64_t offset, bool center) {
  return nms_box(boxes.value_as_double(offset), boxes.value_as_double(offset + 1), boxes.value_as_double(offset + 2),
                 boxes.value_as_double(offset + 3), center);
}

double iou(const Box& p, const Box& q) { return nms_iou(p, q); }

Status nms_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& boxes = *ctx.input(0);
  const Tensor& scores = *ctx.input(1);
  if (boxes.rank() != 3 || boxes.dim(2) != 4 || scores.rank() != 3 || scores.dim(0) != boxes.dim(0) ||
      scores.dim(2) != boxes.dim(1)) {
    return ctx.error(StatusCode::kInvalidArgument, "boxes ", dims_to_string(boxes.dims()), " and scores ",
                     dims_to_string(scores.dims()), " must be [B, N, 4] and [B, C, N]");
  }
  int64_t max_out = ctx.input(2) && ctx.input(2)->numel() ? ctx.input(2)->value_as_int64(0) : 0;
  double iou_thr = ctx.input(3) && ctx.input(3)->numel() ? ctx.input(3)->value_as_double(0) : 0.0;
  bool has_score_thr = ctx.input(4) && ctx.input(4)->numel();
  double score_thr = has_score_thr ? ctx.input(4)->value_as_double(0) : 0.0;
  bool center = ctx.node().attr_int("center_point_box", 0) != 0;
  int64_t B = boxes.dim(0), N = boxes.dim(1), C = scores.dim(1);
  std::vector<int64_t> selected;
  // Boxes and scores read once (not per comparison), and a candidate stops at the first kept
  // box that suppresses it: torchvision's batched NMS hands over every box of every class at
  // once (SSDLite: ~27000 with random weights), where the per-pair reads took seconds.
  std::vector<Box> all(static_cast<size_t>(N));
  std::vector<double> score(static_cast<size_t>(N));
  // Each candidate is compared with every box kept before it: N^2 / 2 per class when nothing is
  // suppressed (10^6 boxes, 16 MB, are 5 x 10^11 IoUs), so the run's deadline is read per candidate.
  InterruptPoll poll;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t i = 0; i < N; ++i) all[static_cast<size_t>(i)] = read_box(boxes, (b * N + i) * 4, center);
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int64_t> order;
      for (int64_t i = 0; i < N; ++i) {
        score[static_cast<size_t>(i)] = scores.value_as_double((b * C + c) * N + i);
        if (!has_score_thr || score[static_cast<size_t>(i)] > score_thr) order.push_back(i);
      }
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t p, int64_t q) { return score[static_cast<size_t>(p)] > score[static_cast<size_t>(q)]; });
      std::vector<Box> kept;
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        RETURN_IF_ERROR(poll.tick(8 * static_cast<int64_t>(kept.size()) + 1));
        const Box& box = all[static_cast<size_t>(i)];
        bool suppressed = false;
        for (const Box& k : kept) {
          if (iou(box, k) > iou_thr) {
            suppressed = true;
            break;
          }
        }
        if (suppressed) continue;
        kept.push_back(box);
        selected.insert(selected.end(), {b, c, i});
      }
    }
  }
  ctx.set_output(0, Tensor::from_vector<int64_t>({static_cast<int64_t>(selected.size() / 3), 3}, selected));
  return Status::OK();
}

// Bilinear sample of an [H, W] plane at (y, x) as RoiAlign defines it (clamped at the edges,
// zero beyond one pixel outside). A NaN position (a NaN roi) is neither inside nor outside:
// the sample is NaN (its index was a NaN converted to int64: UBSan, kernel_run stop 19).
double roi_bilinear(const Tensor& x, int64_t plane, int64_t H, int64_t W, double y, double xx) {
  if (std::isnan(y) || std::isnan(xx)) return std::numeric_limits<double>::quiet_NaN();
  if (y < -1.0 || y > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W)) return 0.0;
  y = std::max(y, 0.0);
  xx = std::max(xx, 0.0);
  int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(xx);
  int64_t y1 = y0 + 1, x1 = x0 + 1;
  if (y0 >= H - 1) { y0 = y1 = H - 1; y = static_cast<double>(y0); }
  if (x0 >= W - 1) { x0 = x1 = W - 1; xx = static_cast<double>(x0); }
  double ly = y - static_cast<double>(y0), lx = xx - static_cast<double>(x0), hy = 1 - ly, hx = 1 - lx;
  auto v = [&](int64_t r, int64_t c) { return x.value_as_double(plane + r * W + c); };
  return hy * hx * v(y0, x0) + hy * lx * v(y0, x1) + ly * hx * v(y1, x0) + ly * lx * v(y1, x1);
}

Status roi_align_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(3));
  const Tensor& x = *ctx.input(0);
  const Tensor& rois = *ctx.input(1);
  const Tensor& batch_idx = *ctx.input(2);
  if (x.rank() != 4 || rois.rank() != 2 || rois.dim(1) != 4 || batch_idx.numel() != rois.dim(0)) {
    return ctx.error(StatusCode::kInvalidArgument, "X ", dims_to_string(x.dims()), ", rois ", dims_to_string(rois.dims()),
                     " and batch_indices ", dims_to_string(batch_idx.dims()), " must be [N,C,H,W], [R,4] and [R]");
  }
  const Node& n = ctx.node();
  int64_t oh = n.attr_int("output_height", 1), ow = n.attr_int("output_width", 1);
  int64_t ratio = n.attr_int("sampling_ratio", 0);
  double scale = n.attr_float("spatial_scale", 1.0f);
  bool avg = n.attr_string("mode", "avg") == "avg";
  bool half_pixel = n.attr_string("coordinate_transformation_mode", "half_pixel") == "half_pixel" && ctx.opset() >= 16;
  // The CPU device's native kernel's check (it hands the reference every node it does not
  // take): an output_height of 2^62 overflowed R * C * oh * ow here (UBSan, kernel_run stop 18).
  if (oh <= 0 || ow <= 0 || ratio < 0) {
    return ctx.error(StatusCode::kInvalidArgument, "output_height ", oh, " and output_width ", ow,
                     " must be positive and sampling_ratio ", ratio, " >= 0");
  }
  int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
  const CheckedInt64 total = CheckedInt64(R) * C * oh * ow;
  if (total.overflowed()) {
    return ctx.error(StatusCode::kInvalidArgument, "output [", R, ", ", C, ", ", oh, ", ", ow, "] passes int64 elements");
  }
  // An edge clamp of an empty plane is index -1: the sample read before the plane (a value
  // that changed from run to run, kernel_run stop 19). There is nothing to sample.
  if ((H == 0 || W == 0) && total.value() > 0) {
    return ctx.error(StatusCode::kInvalidArgument, "X ", dims_to_string(x.dims()), " has no pixels (H or W is 0) but ", R,
                     " region(s) are to be sampled from it");
  }
  ScratchCharge charge(total.value(), sizeof(double), "RoiAlign's output");  // before the buffer exists
  std::vector<double> out(static_cast<size_t>(total.value()));
  // Samples per output bin: sampling_ratio squared, or the roi's size over the output's (a roi
  // of 1e30 saturates to 2^63 - 1): not bounded by any tensor. The deadline is read per sample.
  InterruptPoll poll;
  for (int64_t r = 0; r < R; ++r) {
    int64_t b = batch_idx.value_as_int64(r);
    if (b < 0 || b >= x.dim(0)) return ctx.error(StatusCode::kInvalidArgument, "batch index ", b, " out of range");
    double offset = half_pixel ? 0.5 : 0.0;
    double x1 = rois.value_as_double(r * 4) * scale - offset, y1 = rois.value_as_double(r * 4 + 1) * scale - offset;
    double x2 = rois.value_as_double(r * 4 + 2) * scale - offset, y2 = rois.value_as_double(r * 4 + 3) * scale - offset;
    double rw = x2 - x1, rh = y2 - y1;
    if (!half_pixel) { rw = std::max(rw, 1.0); rh = std::max(rh, 1.0); }
    double bh = rh / static_cast<double>(oh), bw = rw / static_cast<double>(ow);
    int64_t gh = ratio > 0 ? ratio : int64_from_double(std::ceil(rh / static_cast<double>(oh)));
    int64_t gw = ratio > 0 ? ratio : int64_from_double(std::ceil(rw / static_cast<double>(ow)));
    gh = std::max<int64_t>(gh, 1);
    gw = std::max<int64_t>(gw, 1);
    for (int64_t c = 0; c < C; ++c) {
      int64_t plane = (b * C + c) * H * W;
      for (int64_t py = 0; py < oh; ++py) {
        for (int64_t px = 0; px < ow; ++px) {
          double acc = avg ? 0.0 : -INFINITY;
          for (int64_t iy = 0; iy < gh; ++iy) {
            double y = y1 + static_cast<double>(py) * bh + (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix) {
              RETURN_IF_ERROR(poll.tick(16));
              double xx = x1 + static_cast<double>(px) * bw + (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
              double v = roi_bilinear(x, plane, H, W, y, xx);
              acc = avg ? acc + v : std::max(acc, v);
            }
          }
          out[static_cast<size_t>(((r * C + c) * oh + py) * ow + px)] = avg ? acc / static_cast<double>(gh * gw) : acc;
        }
      }
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>({R, C, oh, ow}, out), x.dtype()));
  return Status::OK();
}

// GridSample (opset 16): 4-D input, grid [N, H_out, W_out, 2] of (x, y) in [-1, 1].
Status grid_sample_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_inputs(2));
  const Tensor& x = *ctx.input(0);
  const Tensor& grid = *ctx.input(1);
  if (x.rank() != 4 || grid.rank() != 4 || grid.dim(3) != 2 || grid.dim(0) != x.dim(0)) {
    return ctx.error(StatusCode::kInvalidArgument, "X ", dims_to_string(x.dims()), " and grid ", dims_to_string(grid.dims()),
                     " must be [N,C,H,W] and [N,Ho,Wo,2]");
  }
  const Node& n = ctx.node();
  std::string mode = n.attr_string("mode", "bilinear"), padding = n.attr_string("padding_mode", "zeros");
  if (padding != "zeros" && padding != "border" && padding != "reflection") {
    return ctx.error(StatusCode::kInvalidArgument, "padding_mode must be zeros, border or reflection, got '", padding, "'");
  }
  bool align = n.attr_int("align_corners", 0) != 0;
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), Ho = grid.dim(1), Wo = grid.dim(2);
  auto unnormalize = [&](double v, int64_t len) {
    return align ? (v + 1) / 2 * static_cast<double>(len - 1) : ((v + 1) * static_cast<double>(len) - 1) / 2;
  };
  auto reflect = [&](double v, double lo, double hi) {
    double span = hi - lo;
    if (span <= 0) return lo;
    if (v < lo) { double d = lo - v; int64_t f = int64_from_double(d / span); double r = d - static_cast<double>(f) * span; return f % 2 ? hi - r : lo + r; }
    if (v > hi) { double d = v - hi; int64_t f = int64_from_double(d / span); double r = d - static_cast<double>(f) * span; return f % 2 ? lo + r : hi - r; }
    return v;
  };
  auto fix = [&](double v, int64_t len) {
    if (padding == "border") return std::min(std::max(v, 0.0), static_cast<double>(len - 1));
    if (padding == "reflection") {
      return align ? reflect(v, 0, static_cast<double>(len - 1)) : reflect(v, -0.5, static_cast<double>(len) - 0.5);
    }
    return v;
  };
  // An empty X still has N and C (C may be 2^62 when H is 0): an empty output is not walked.
  const int64_t total = num_elements({N, C, Ho, Wo});
  if (total == 0) {
    ctx.set_output(0, Tensor(x.dtype(), {N, C, Ho, Wo}));
    return Status::OK();
  }
  std::vector<double> out(static_cast<size_t>(total));
  // A sample position is the model's (NaN, 1e37 from the grid): its row and column are clamped
  // to [-1, H] and [-1, W], one past each edge, which pixel() reads as it would the true index;
  // the weights use the unclamped position.
  auto row = [&](double v) { return index_from_double(v, -1, H); };
  auto col = [&](double v) { return index_from_double(v, -1, W); };
  // Bounded by the output, but at up to 16 taps an element the reference takes seconds on an
  // output of a few hundred MB: the run's deadline is read per output row.
  InterruptPoll poll;
  const int64_t row_work = Wo * (mode == "bicubic" ? 64 : 16) + 1;
  for (int64_t b = 0; b < N; ++b) {
    for (int64_t c = 0; c < C; ++c) {
      int64_t plane = (b * C + c) * H * W;
      auto pixel = [&](int64_t r, int64_t q) -> double {
        if (padding != "zeros") { r = std::min(std::max<int64_t>(r, 0), H - 1); q = std::min(std::max<int64_t>(q, 0), W - 1); }
        if (r < 0 || r >= H || q < 0 || q >= W) return 0.0;
        return x.value_as_double(plane + r * W + q);
      };
      for (int64_t i = 0; i < Ho; ++i) {
        RETURN_IF_ERROR(poll.tick(row_work));
        for (int64_t j = 0; j < Wo; ++j) {
          int64_t g = ((b * Ho + i) * Wo + j) * 2;
          double gx = fix(unnormalize(grid.value_as_double(g), W), W);
          double gy = fix(unnormalize(grid.value_as_double(g + 1), H), H);
          double v = 0;
          if (mode == "nearest") {
            v = pixel(row(std::nearbyint(gy)), col(std::nearbyint(gx)));
          } else if (mode == "bilinear") {
            double y0 = std::floor(gy), x0 = std::floor(gx), ly = gy - y0, lx = gx - x0;
            int64_t r0 = row(y0), r1 = row(y0 + 1), q0 = col(x0), q1 = col(x0 + 1);
            v = (1 - ly) * (1 - lx) * pixel(r0, q0) + (1 - ly) * lx * pixel(r0, q1) + ly * (1 - lx) * pixel(r1, q0) +
                ly * lx * pixel(r1, q1);
          } else {  // bicubic, A = -0.75
            const double A = -0.75;
            auto w = [&](double t) {
              t = std::fabs(t);
              if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
              if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
              return 0.0;
            };
            double y0 = std::floor(gy), x0 = std::floor(gx);
            for (int64_t dy = -1; dy <= 2; ++dy) {
              for (int64_t dx = -1; dx <= 2; ++dx) {
                double r = y0 + static_cast<double>(dy), q = x0 + static_cast<double>(dx);
                v += w(gy - r) * w(gx - q) * pixel(row(r), col(q));
              }
            }
          }
          out[static_cast<size_t>(((b * C + c) * Ho + i) * Wo + j)] = v;
        }
      }
    }
  }
  ctx.set_output(0, convert_tensor(Tensor::from_vector<double>({N, C, Ho, Wo}, out), x.dtype()));
  return Status::OK();
}

// What making one slice (a Tensor and its buffer) costs, in InterruptPoll's units (about a
// nanosecond each): about 1 us measured (2 x 10^6 one-element keys in 2.1 s, ordinary build).
constexpr int64_t kSliceCost = 1000;

Status unique_kernel(KernelContext& ctx) {
  RETURN_IF_ERROR(ctx.require_input(0));
  const Tensor& x = *ctx.input(0);
  bool sorted = ctx.node().attr_int("sorted", 1) != 0;
  bool has_axis = ctx.node().has_attr("axis");
  Tensor src = has_axis ? x : x.reshaped({x.numel()});
  int64_t axis = 0;
  if (has_axis) RETURN_IF_ERROR(normalize_axis(ctx, ctx.node().attr_int("axis", 0), static_cast<int64_t>(x.rank()), &axis));
  int64_t len = src.dim(static_cast<size_t>(axis));
  // Each slice along the axis becomes a key (its elements as text for strings, else numbers).
  // Every loop below reads the run's deadline: building the keys is linear but costs a slice
  // and a vector per key (2 x 10^5 keys ran 7 s under ASan, unpolled, past a 50 ms deadline:
  // make sanitize-asan-cpp, stop 18), the comparisons are quadratic.
  InterruptPoll poll;
  const int64_t slice_work = len > 0 ? src.numel() / len : 0;
  const bool strings = x.dtype() == DType::kString;
  std::vector<std::vector<double>> keys(strings ? 0 : static_cast<size_t>(len));
  std::vector<std::vector<std::string>> skeys(strings ? static_cast<size_t>(len) : 0);
  for (int64_t i = 0; i < len; ++i) {
    RETURN_IF_ERROR(poll.tick(kSliceCost + slice_work));
    Tensor s = slice_along(src, axis, i, 1);
    for (int64_t k = 0; k < s.numel(); ++k) {
      if (strings) skeys[static_cast<size_t>(i)].push_back(s.data<std::string>()[k]);
      else keys[static_cast<size_t>(i)].push_back(s.value_as_double(k));
    }
  }
  auto less = [&](int64_t a, int64_t b) {
    return strings ? skeys[static_cast<size_t>(a)] < skeys[static_cast<size_t>(b)]
                   : keys[static_cast<size_t>(a)] < keys[static_cast<size_t>(b)];
  };
  auto equal = [&](int64_t a, int64_t b) { return !less(a, b) && !less(b, a); };
  std::vector<int64_t> firsts;  // first occurrence of each distinct slice, in order of appearance
  std::vector<int64_t> inverse(static_cast<size_t>(len));
  // Each slice is compared with every distinct one before it: quadratic in the distinct count
  // (10^6 distinct floats, 4 MB, are 5 x 10^11 comparisons). The run's deadline is read along.
  const int64_t compare_work = 4 * slice_work + 4;
  for (int64_t i = 0; i < len; ++i) {
    size_t u = 0;
    while (u < firsts.size() && !equal(firsts[u], i)) {
      RETURN_IF_ERROR(poll.tick(compare_work));
      ++u;
    }
    if (u == firsts.size()) firsts.push_back(i);
    inverse[static_cast<size_t>(i)] = static_cast<int64_t>(u);
  }
  std::vector<int64_t> order(firsts.size());
  std::iota(order.begin(), order.end(), 0);
  if (sorted) std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return less(firsts[static_cast<size_t>(a)], firsts[static_cast<size_t>(b)]); });
  std::vector<int64_t> rank_of(order.size());
  for (size_t r = 0; r < order.size(); ++r) rank_of[static_cast<size_t>(order[r])] = static_cast<int64_t>(r);
  std::vector<Tensor> parts;
  std::vector<int64_t> indices, counts(order.size(), 0), inv(static_cast<size_t>(len));
  for (int64_t o : order) {
    RETURN_IF_ERROR(poll.tick(kSliceCost + slice_work));
    parts.push_back(slice_along(src, axis, firsts[static_cast<size_t>(o)], 1));
    indices.push_back(firsts[static_cast<size_t>(o)]);
  }
  for (int64_t i = 0; i < len; ++i) {
    int64_t r = rank_of[static_cast<size_t>(inverse[static_cast<size_t>(i)])];
    inv[static_cast<size_t>(i)] = r;
    ++counts[static_cast<size_t>(r)];
  }
  int64_t u = static_cast<int64_t>(order.size());
  if (parts.empty()) {
    Dims d = src.dims();
    d[static_cast<size_t>(axis)] = 0;
    ctx.set_output(0, Tensor(x.dtype(), d));
  } else {
    ctx.set_output(0, concat_along(parts, axis));
  }
  ctx.set_output(1, Tensor::from_vector<int64_t>({u}, indices));
  ctx.set_output(2, Tensor::from_vector<int64_t>({len}, inv));
  ctx.set_output(3, Tensor::from_vector<int64_t>({u}, counts));
  return Status::OK();
}

}  // namespace

void register_vision_kernels(KernelRegistry& r) {
  r.add("", "NonMaxSuppression", nms_kernel);
  r.add("", "RoiAlign", roi_align_kernel);
  r.add("", "GridSample", grid_sample_kernel);
  r.add("", "Unique", unique_kernel);
}

}  // namespace pyflame_rt
