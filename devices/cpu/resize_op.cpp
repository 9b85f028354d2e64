// Native Resize (and Upsample) of float32 tensors in nearest, linear and cubic modes, when only
// the last two axes change size (images [N,C,H,W], 1-D signals [N,C,L]): the ONNX coordinate
// transform of each axis becomes a small table of source indices and weights per output
// index, computed once per shape, and each [H,W] plane is resampled separably (rows along W
// into a scratch of H_in x W_out, then columns along H), planes split over the OpenMP team.
// tf_crop_and_resize, antialias, `axes` and keep_aspect_ratio_policy take the reference kernel.
#include <omp.h>

#include <cmath>
#include <map>

#include "devices/cpu/native_ops.h"
#include "devices/resize_coordinate.h"
#include "devices/ref/kernel_util.h"

namespace pyflame_rt {
namespace cpu {

namespace {

struct Config {
  std::string mode, coord, nearest_mode;
  double cubic_a = -0.75;
  bool exclude_outside = false;
};

// Source indices (clamped to the input) and weights of every output index on one axis,
// `taps` per output index, zero-weight taps dropped where every output has them.
struct AxisTable {
  int taps = 1;
  std::vector<int64_t> index;
  std::vector<float> weight;
  double gain = 1;  // the largest sum of |weight| over one output's taps
};

// The native kernel stores weights and sums in float: an output's rounding error is about
// gain_h * gain_w * 2^-24 of its largest tap. Linear and nearest have gain 1 and cubic with
// the usual a (-0.5, -0.75) about 1.2; a cubic_coeff_a far outside [-3, 0], or exclude_outside
// renormalising by a near-zero sum, gives weights that cancel (a = 1e30 gave 1.32e29 where the
// double reference gives 6.62e28; kernel_run stop 23). Past this gain, which would cost more
// than 6 of the float's 24 bits, the double reference kernel runs.
constexpr double kMaxNativeGain = 64;

AxisTable axis_table(const Config& c, int64_t in_len, int64_t out_len, double scale) {
  const bool cubic = c.mode == "cubic";
  AxisTable t;
  t.taps = c.mode == "nearest" ? 1 : cubic ? 4 : 2;
  for (int64_t o = 0; o < out_len; ++o) {
    double x = resize_source_position(c.coord, o, in_len, out_len, scale);
    // base = ceil(x) - 1 and ratio in (0, 1]: an integral x lands on its own source point.
    double base = std::ceil(x) - 1, r = x - base;
    if (c.mode == "nearest") {
      bool upper;
      if (r == 1.0) upper = true;
      else if (c.nearest_mode == "round_prefer_ceil") upper = r >= 0.5;
      else if (c.nearest_mode == "floor") upper = false;
      else if (c.nearest_mode == "ceil") upper = true;
      else upper = r > 0.5;  // round_prefer_floor
      int64_t i = static_cast<int64_t>(base) + (upper ? 1 : 0);
      t.index.push_back(std::min(std::max<int64_t>(i, 0), in_len - 1));
      t.weight.push_back(1.f);
      continue;
    }
    std::vector<double> w;
    if (!cubic) {
      w = {1 - r, r};
    } else {
      double A = c.cubic_a, s = 1 - r;
      w = {((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A, ((A + 2) * r - (A + 3)) * r * r + 1,
           ((A + 2) * s - (A + 3)) * s * s + 1, ((A * (s + 1) - 5 * A) * (s + 1) + 8 * A) * (s + 1) - 4 * A};
    }
    int64_t first = static_cast<int64_t>(base) - (cubic ? 1 : 0);
    double total = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      int64_t i = first + static_cast<int64_t>(k);
      if (c.exclude_outside && (i < 0 || i >= in_len)) w[k] = 0;
      total += w[k];
    }
    double gain = 0;
    for (size_t k = 0; k < w.size(); ++k) {
      int64_t i = first + static_cast<int64_t>(k);
      const double weight = c.exclude_outside && total != 0 ? w[k] / total : w[k];
      gain += std::fabs(weight);
      t.index.push_back(std::min(std::max<int64_t>(i, 0), in_len - 1));
      t.weight.push_back(static_cast<float>(weight));
    }
    if (std::isnan(gain) || gain > t.gain) t.gain = gain;  // a NaN stays
  }
  return t;
}

// One plane: x [hi, wi] -> y [ho, wo] through `tmp` [hi, wo].
void resample_plane(const float* x, float* y, float* tmp, int64_t hi, int64_t wi, int64_t ho, int64_t wo,
                    const AxisTable& th, const AxisTable& tw) {
  const int kw = tw.taps, kh = th.taps;
  for (int64_t r = 0; r < hi; ++r) {
    const float* src = x + r * wi;
    float* dst = tmp + r * wo;
    for (int64_t o = 0; o < wo; ++o) {
      const int64_t* idx = &tw.index[static_cast<size_t>(o * kw)];
      const float* w = &tw.weight[static_cast<size_t>(o * kw)];
      float acc = 0.f;
      for (int k = 0; k < kw; ++k) acc += w[k] * src[idx[k]];
      dst[o] = acc;
    }
  }
  for (int64_t o = 0; o < ho; ++o) {
    float* dst = y + o * wo;
    const int64_t* idx = &th.index[static_cast<size_t>(o * kh)];
    const float* w = &th.weight[static_cast<size_t>(o * kh)];
    const float* row0 = tmp + idx[0] * wo;
    const float w0 = w[0];
#pragma omp simd
    for (int64_t j = 0; j < wo; ++j) dst[j] = w0 * row0[j];
    for (int k = 1; k < kh; ++k) {
      const float* row = tmp + idx[k] * wo;
      const float wk = w[k];
#pragma omp simd
      for (int64_t j = 0; j < wo; ++j) dst[j] += wk * row[j];
    }
  }
}

class ResizeOp : public NativeOp {
 public:
  ResizeOp(const Node& node, int64_t opset, Config cfg, bool upsample)
      : node_(node), opset_(opset), cfg_(std::move(cfg)), upsample_(upsample) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Value& p = inputs[0]->as_plain();
    if (!p.is_tensor() || p.tensor.dtype() != DType::kFloat32 || p.tensor.rank() < 1 || p.tensor.numel() == 0) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    const Tensor& x = p.tensor;
    const size_t rank = x.rank();
    auto doubles = [&](size_t i) {
      std::vector<double> v;
      if (i < inputs.size() && inputs[i]) {
        const Tensor& t = inputs[i]->as_plain().tensor;
        for (int64_t k = 0; k < t.numel(); ++k) v.push_back(t.value_as_double(k));
      }
      return v;
    };
    // Upsample-9 and Resize-10: scales is input 1; Resize-11+: roi, scales, sizes.
    const bool old = upsample_ || opset_ < 11;
    std::vector<double> scales = doubles(old ? 1 : 2);
    Dims sizes;
    if (!old && inputs.size() > 3 && inputs[3]) sizes = inputs[3]->as_plain().tensor.to_int64_vector();
    if (sizes.empty() == scales.empty()) return run_reference(node_, opset_, inputs, outputs);  // it reports which
    if (sizes.empty()) {
      if (scales.size() != rank) return run_reference(node_, opset_, inputs, outputs);
      for (size_t d = 0; d < rank; ++d) {
        if (!(scales[d] > 0) || !std::isfinite(scales[d])) return run_reference(node_, opset_, inputs, outputs);
        sizes.push_back(int64_from_double(std::floor(static_cast<double>(x.dim(d)) * scales[d])));
      }
    } else {
      if (sizes.size() != rank) return run_reference(node_, opset_, inputs, outputs);
      scales.clear();
      for (size_t d = 0; d < rank; ++d) scales.push_back(static_cast<double>(sizes[d]) / static_cast<double>(x.dim(d)));
    }
    // Only the last two axes may change; a leading axis of scale 1 maps every index to itself.
    const size_t first = rank >= 2 ? rank - 2 : 0;
    for (size_t d = 0; d < first; ++d) {
      if (sizes[d] != x.dim(d) || scales[d] != 1.0) return run_reference(node_, opset_, inputs, outputs);
    }
    for (int64_t s : sizes) if (s <= 0) return run_reference(node_, opset_, inputs, outputs);
    const int64_t hi = rank >= 2 ? x.dim(first) : 1, wi = x.dim(rank - 1);
    const int64_t ho = rank >= 2 ? sizes[first] : 1, wo = sizes[rank - 1];
    const double sh = rank >= 2 ? scales[first] : 1.0, sw = scales[rank - 1];
    // The output first: sizes from the model's scales may be 2^63 - 1 (1e30 saturated), and its
    // allocation (checked and charged to the run's budget) fails before tables of that length
    // are built (a kernel_run timeout on the reference, run 21; this path had the same order).
    Tensor y = plain_output_tensor(DType::kFloat32, sizes);
    std::shared_ptr<const Tables> tables = tables_for(hi, wi, ho, wo, sh, sw);
    // NaN gains (weights from a NaN coefficient) take the reference too.
    if (!(tables->h.gain * tables->w.gain <= kMaxNativeGain)) return run_reference(node_, opset_, inputs, outputs);
    int64_t planes = 1;
    for (size_t d = 0; d < first; ++d) planes *= x.dim(d);
    const float* src = x.data<float>();
    float* dst = y.data<float>();
    const bool parallel = planes > 1 && planes * ho * wo >= (1 << 14) && omp_get_max_threads() > 1;
#pragma omp parallel if (parallel)
    {
      std::vector<float> tmp(static_cast<size_t>(hi * wo));
#pragma omp for schedule(static)
      for (int64_t pl = 0; pl < planes; ++pl) {
        resample_plane(src + pl * hi * wi, dst + pl * ho * wo, tmp.data(), hi, wi, ho, wo, tables->h, tables->w);
      }
    }
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  struct Tables {
    AxisTable h, w;
  };

  std::shared_ptr<const Tables> tables_for(int64_t hi, int64_t wi, int64_t ho, int64_t wo, double sh, double sw) {
    return *tables_.get_or_build(std::make_tuple(hi, wi, ho, wo, sh, sw), [&] {
      auto t = std::make_shared<Tables>();
      t->h = axis_table(cfg_, hi, ho, sh);
      t->w = axis_table(cfg_, wi, wo, sw);
      return t;
    });
  }

  Node node_;
  int64_t opset_;
  Config cfg_;
  bool upsample_;
  ShapePlanCache<Tables, std::tuple<int64_t, int64_t, int64_t, int64_t, double, double>> tables_;
};

}  // namespace

std::unique_ptr<NativeOp> make_resize_op(const Node& node, int64_t opset, const Graph&) {
  const bool upsample = node.op_type == "Upsample";
  if (node.op_type != "Resize" && !upsample) return nullptr;
  Config cfg;
  cfg.mode = node.attr_string("mode", "nearest");
  if (cfg.mode == "bilinear") cfg.mode = "linear";
  if (cfg.mode != "nearest" && cfg.mode != "linear" && cfg.mode != "cubic") return nullptr;
  if (upsample || opset < 11) {
    // Upsample's and Resize-10's semantics: asymmetric coordinates, nearest rounds down.
    cfg.coord = "asymmetric";
    cfg.nearest_mode = "floor";
  } else {
    cfg.coord = node.attr_string("coordinate_transformation_mode", "half_pixel");
    cfg.nearest_mode = node.attr_string("nearest_mode", "round_prefer_floor");
    cfg.cubic_a = node.attr_float("cubic_coeff_a", -0.75f);
    cfg.exclude_outside = node.attr_int("exclude_outside", 0) != 0;
    if (cfg.exclude_outside && cfg.mode != "cubic") return nullptr;  // the reference names the error
  }
  static const char* kCoords[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "tf_half_pixel_for_nn", "asymmetric"};
  if (std::find(std::begin(kCoords), std::end(kCoords), cfg.coord) == std::end(kCoords)) return nullptr;
  if (node.attr_int("antialias", 0) != 0 || !node.attr_ints("axes").empty() ||
      node.attr_string("keep_aspect_ratio_policy", "stretch") != "stretch") {
    return nullptr;
  }
  return std::make_unique<ResizeOp>(node, opset, std::move(cfg), upsample);
}

// Resize (opset 10+) and Upsample from opset 9 (scales as an input; before, an attribute).
void register_resize_ops(NativeOpTable& t) {
  t.add({"", "Resize", 10, kNativeAnyOpset, {DType::kFloat32}, make_resize_op});
  t.add({"", "Upsample", 9, kNativeAnyOpset, {DType::kFloat32}, make_resize_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
