// Native RoiAlign in "avg" mode on float32 (torchvision's MultiScaleRoIAlign): per region, the
// sample points' four corner offsets and bilinear weights are computed once and reused for
// every channel (the reference recomputes them per channel and reads each corner through
// value_as_double), regions split over the OpenMP team. Sample positions, clamping and the
// zero beyond one pixel outside follow the reference exactly; the sums are float. "max" mode
// and other dtypes take the reference kernel, as do bad shapes and batch indices (it names
// them); non-positive output sizes or a negative sampling_ratio are refused here.
#include "devices/cpu/roi_align_op.h"

#include <omp.h>

#include <cmath>
#include <limits>

#include "devices/ref/kernel_util.h"
#include "graph/checked_math.h"

namespace pyflame_rt {
namespace cpu {

namespace {

// Below this many output elements the op runs on the calling thread alone.
constexpr int64_t kParallelMin = 1 << 14;
// The most sample points one region's table may hold (48 bytes each: 48 MB). Its size is
// output_height x output_width x samples per bin, and the samples per bin come from
// sampling_ratio (an attribute) or from the region's size (a value): a ratio of 10^6 asked for
// 10^12 entries, and a 1e30 box made the product overflow and the table too small (SIGSEGV,
// stop 17). Past this the reference kernel runs the node: it walks the samples without a
// table and checks the run's deadline per sample.
constexpr int64_t kMaxSamplesPerRoi = int64_t{1} << 20;

struct Sample {
  int64_t o[4];
  float w[4];
};

class RoiAlignOp : public NativeOp {
 public:
  RoiAlignOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* x = plain_f32(inputs[0]);
    const Tensor* rois = inputs.size() > 2 ? plain_f32(inputs[1]) : nullptr;
    const Tensor* bidx = inputs.size() > 2 ? plain_fixed(inputs[2]) : nullptr;
    const int64_t oh = node_.attr_int("output_height", 1), ow = node_.attr_int("output_width", 1);
    const int64_t ratio = node_.attr_int("sampling_ratio", 0);
    if (oh <= 0 || ow <= 0 || ratio < 0) {
      return node_.error(StatusCode::kInvalidArgument, "output_height ", oh, " and output_width ", ow,
                         " must be positive and sampling_ratio ", ratio, " >= 0");
    }
    if (!x || !rois || !bidx || node_.attr_string("mode", "avg") != "avg" || x->rank() != 4 || rois->rank() != 2 ||
        rois->dim(1) != 4 || bidx->numel() != rois->dim(0) ||
        (bidx->dtype() != DType::kInt64 && bidx->dtype() != DType::kInt32)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const int64_t N = x->dim(0), C = x->dim(1), H = x->dim(2), W = x->dim(3), R = rois->dim(0);
    if (H == 0 || W == 0) return run_reference(node_, opset_, inputs, outputs);  // it names the empty plane
    for (int64_t r = 0; r < R; ++r) {
      const int64_t b = bidx->value_as_int64(r);
      if (b < 0 || b >= N) return run_reference(node_, opset_, inputs, outputs);
    }
    const double scale = node_.attr_float("spatial_scale", 1.0f);
    const bool half_pixel =
        node_.attr_string("coordinate_transformation_mode", "half_pixel") == "half_pixel" && opset_ >= 16;
    // Region r's corner, bin size and samples per bin (the reference's arithmetic).
    struct Grid {
      double x1, y1, bh, bw;
      int64_t gh, gw;
    };
    auto grid = [&](int64_t r) {
      const float* box = rois->data<float>() + r * 4;
      const double offset = half_pixel ? 0.5 : 0.0;
      const double x1 = box[0] * scale - offset, y1 = box[1] * scale - offset;
      const double x2 = box[2] * scale - offset, y2 = box[3] * scale - offset;
      double rw = x2 - x1, rh = y2 - y1;
      if (!half_pixel) {
        rw = std::max(rw, 1.0);
        rh = std::max(rh, 1.0);
      }
      return Grid{x1, y1, rh / static_cast<double>(oh), rw / static_cast<double>(ow),
                  std::max<int64_t>(ratio > 0 ? ratio : int64_from_double(std::ceil(rh / static_cast<double>(oh))), 1),
                  std::max<int64_t>(ratio > 0 ? ratio : int64_from_double(std::ceil(rw / static_cast<double>(ow))), 1)};
    };
    for (int64_t r = 0; r < R; ++r) {
      const Grid g = grid(r);
      const CheckedInt64 table = CheckedInt64(oh) * ow * g.gh * g.gw;
      if (table.overflowed() || table.value() > kMaxSamplesPerRoi) return run_reference(node_, opset_, inputs, outputs);
    }
    Tensor y = plain_output_tensor(DType::kFloat32, {R, C, oh, ow});
    const float* src = x->data<float>();
    float* dst = y.data<float>();
    auto one_roi = [&](int64_t r, std::vector<Sample>& samples) {
      const int64_t b = bidx->value_as_int64(r);
      const Grid grid_r = grid(r);
      const double x1 = grid_r.x1, y1 = grid_r.y1, bh = grid_r.bh, bw = grid_r.bw;
      const int64_t gh = grid_r.gh, gw = grid_r.gw;
      samples.resize(static_cast<size_t>(oh * ow * gh * gw));
      Sample* s = samples.data();
      for (int64_t py = 0; py < oh; ++py) {
        for (int64_t px = 0; px < ow; ++px) {
          for (int64_t iy = 0; iy < gh; ++iy) {
            double yy = y1 + static_cast<double>(py) * bh + (static_cast<double>(iy) + 0.5) * bh / static_cast<double>(gh);
            for (int64_t ix = 0; ix < gw; ++ix, ++s) {
              double xx = x1 + static_cast<double>(px) * bw + (static_cast<double>(ix) + 0.5) * bw / static_cast<double>(gw);
              *s = Sample{{0, 0, 0, 0}, {0, 0, 0, 0}};
              if (std::isnan(yy) || std::isnan(xx)) {  // a NaN roi: a NaN sample, as the reference
                s->w[0] = std::numeric_limits<float>::quiet_NaN();
                continue;
              }
              if (yy < -1.0 || yy > static_cast<double>(H) || xx < -1.0 || xx > static_cast<double>(W)) continue;
              double sy = std::max(yy, 0.0), sx = std::max(xx, 0.0);
              int64_t y0 = static_cast<int64_t>(sy), x0 = static_cast<int64_t>(sx), ya = y0 + 1, xa = x0 + 1;
              if (y0 >= H - 1) { y0 = ya = H - 1; sy = static_cast<double>(y0); }
              if (x0 >= W - 1) { x0 = xa = W - 1; sx = static_cast<double>(x0); }
              const double ly = sy - static_cast<double>(y0), lx = sx - static_cast<double>(x0), hy = 1 - ly, hx = 1 - lx;
              *s = Sample{{y0 * W + x0, y0 * W + xa, ya * W + x0, ya * W + xa},
                          {static_cast<float>(hy * hx), static_cast<float>(hy * lx), static_cast<float>(ly * hx),
                           static_cast<float>(ly * lx)}};
            }
          }
        }
      }
      const int64_t per_bin = gh * gw;
      const float inv = 1.0f / static_cast<float>(per_bin);
      for (int64_t c = 0; c < C; ++c) {
        const float* plane = src + (b * C + c) * H * W;
        float* out = dst + ((r * C + c) * oh) * ow;
        const Sample* bin = samples.data();
        for (int64_t k = 0; k < oh * ow; ++k, bin += per_bin) {
          float acc = 0;
          for (int64_t j = 0; j < per_bin; ++j) {
            const Sample& q = bin[j];
            acc += q.w[0] * plane[q.o[0]] + q.w[1] * plane[q.o[1]] + q.w[2] * plane[q.o[2]] + q.w[3] * plane[q.o[3]];
          }
          out[k] = acc * inv;
        }
      }
    };
    if (y.numel() < kParallelMin || R < 2 || omp_get_max_threads() == 1) {
      std::vector<Sample> samples;
      for (int64_t r = 0; r < R; ++r) one_roi(r, samples);
    } else {
#pragma omp parallel
      {
        std::vector<Sample> samples;
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < R; ++r) one_roi(r, samples);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_roi_align_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "RoiAlign") return nullptr;
  return std::make_unique<RoiAlignOp>(node, opset);
}

void register_roi_align_ops(NativeOpTable& t) {
  t.add({"", "RoiAlign", 10, kNativeAnyOpset, {DType::kFloat32}, make_roi_align_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
