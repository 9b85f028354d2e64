// Native NonMaxSuppression on float32 boxes and scores. The reference kernel compares each
// candidate with every box kept so far; torchvision's batched NMS hands over every box of every
// class at once, offset per class so that classes never overlap (SSDLite: ~27000 boxes), and
// that scan took over a second. Here the kept boxes sit in buckets by their left edge, and a
// candidate is compared only with the buckets whose boxes can reach it along x: a kept box
// without x-overlap has no intersection, so its IoU is 0 and it cannot suppress (for
// iou_threshold >= 0; a negative threshold, or a box with a non-finite coordinate, puts every
// box in one bucket). The decision per pair is the reference's own (double IoU, strict >),
// so the selection is the same, in the same order.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "devices/cpu/native_ops.h"
#include "devices/nms_box.h"
#include "devices/run_interrupt.h"

namespace pyflame_rt {
namespace cpu {

namespace {

using Box = NmsBox;

Box read_box(const float* p, bool center) { return nms_box(p[0], p[1], p[2], p[3], center); }

double iou(const Box& p, const Box& q) { return nms_iou(p, q); }

// Kept boxes bucketed by x1: a box of width <= max_width reaching [x1, x2] has its x1 in
// (x1 - max_width, x2), i.e. in buckets bucket(x1 - max_width) .. bucket(x2).
class KeptBoxes {
 public:
  KeptBoxes(const std::vector<Box>& candidates, bool bucketed) {
    double lo = INFINITY, hi = -INFINITY;
    for (const Box& b : candidates) {
      if (!std::isfinite(b.x1) || !std::isfinite(b.x2) || !std::isfinite(b.y1) || !std::isfinite(b.y2)) bucketed = false;
      lo = std::min(lo, b.x1);
      hi = std::max(hi, b.x1);
      width_ = std::max(width_, b.x2 - b.x1);
    }
    constexpr double kMaxBuckets = 65536;
    if (bucketed && !candidates.empty() && hi > lo) {
      min_x_ = lo;
      step_ = std::max(width_, (hi - lo) / kMaxBuckets);
      if (step_ > 0) buckets_.resize(static_cast<size_t>(std::min(kMaxBuckets, std::floor((hi - lo) / step_) + 1)));
    }
    if (buckets_.empty()) buckets_.resize(1);
  }

  // *compared counts the kept boxes looked at (the work, for the run's interrupt poll).
  bool suppresses(const Box& c, double threshold, int64_t* compared) const {
    const size_t from = bucket(c.x1 - width_), to = bucket(c.x2);
    for (size_t b = from; b <= to; ++b) {
      for (const Box& k : buckets_[b]) {
        ++*compared;
        if (iou(c, k) > threshold) return true;
      }
    }
    return false;
  }

  void add(const Box& b) {
    buckets_[bucket(b.x1)].push_back(b);
    ++size_;
  }
  int64_t size() const { return size_; }

 private:
  size_t bucket(double x) const {
    if (buckets_.size() == 1) return 0;
    double k = std::floor((x - min_x_) / step_);
    if (!(k > 0)) return 0;
    return static_cast<size_t>(std::min(k, static_cast<double>(buckets_.size() - 1)));
  }

  std::vector<std::vector<Box>> buckets_;
  double min_x_ = 0, step_ = 0, width_ = 0;
  int64_t size_ = 0;
};

class NmsOp : public NativeOp {
 public:
  NmsOp(const Node& node, int64_t opset) : node_(node), opset_(opset) {}

  Status run(const std::vector<CpuValue*>& inputs, std::vector<CpuValue>& outputs) override {
    const Tensor* boxes = inputs.size() > 1 ? plain_f32(inputs[0]) : nullptr;
    const Tensor* scores = inputs.size() > 1 ? plain_f32(inputs[1]) : nullptr;
    // Other dtypes, and bad shapes (the reference kernel names them).
    if (!boxes || !scores || boxes->rank() != 3 || boxes->dim(2) != 4 || scores->rank() != 3 ||
        scores->dim(0) != boxes->dim(0) || scores->dim(2) != boxes->dim(1)) {
      return run_reference(node_, opset_, inputs, outputs);
    }
    auto scalar = [&](size_t i) -> const Tensor* {
      const Tensor* t = inputs.size() > i ? plain_fixed(inputs[i]) : nullptr;
      return t && t->numel() ? t : nullptr;
    };
    const Tensor* max_t = scalar(2);
    const Tensor* iou_t = scalar(3);
    const Tensor* score_t = scalar(4);
    const int64_t max_out = max_t ? max_t->value_as_int64(0) : 0;
    const double iou_thr = iou_t ? iou_t->value_as_double(0) : 0.0;
    const double score_thr = score_t ? score_t->value_as_double(0) : 0.0;
    const bool center = node_.attr_int("center_point_box", 0) != 0;
    const int64_t B = boxes->dim(0), N = boxes->dim(1), C = scores->dim(1);
    std::vector<int64_t> selected;
    std::vector<Box> all(static_cast<size_t>(N)), candidates;
    std::vector<int64_t> order;
    // Boxes squared in the worst case (every box in one bucket, none suppressed): 10^5 boxes
    // are 5 * 10^9 comparisons, so the run's deadline and terminate are checked inside.
    InterruptPoll poll;
    for (int64_t b = 0; b < B && max_out > 0; ++b) {
      for (int64_t i = 0; i < N; ++i) all[static_cast<size_t>(i)] = read_box(boxes->data<float>() + (b * N + i) * 4, center);
      for (int64_t c = 0; c < C; ++c) {
        const float* score = scores->data<float>() + (b * C + c) * N;
        order.clear();
        for (int64_t i = 0; i < N; ++i) {
          if (!score_t || static_cast<double>(score[i]) > score_thr) order.push_back(i);
        }
        // Ties keep the lower index first, as the reference's stable sort does.
        std::stable_sort(order.begin(), order.end(), [&](int64_t p, int64_t q) { return score[p] > score[q]; });
        RETURN_IF_ERROR(poll.tick(N));
        candidates.clear();
        for (int64_t i : order) candidates.push_back(all[static_cast<size_t>(i)]);
        KeptBoxes kept(candidates, iou_thr >= 0);
        for (size_t k = 0; k < order.size() && kept.size() < max_out; ++k) {
          int64_t compared = 1;
          const bool suppressed = kept.suppresses(candidates[k], iou_thr, &compared);
          RETURN_IF_ERROR(poll.tick(compared));
          if (suppressed) continue;
          kept.add(candidates[k]);
          selected.insert(selected.end(), {b, c, order[k]});
        }
      }
    }
    Tensor y = plain_output_tensor(DType::kInt64, {static_cast<int64_t>(selected.size() / 3), 3});
    std::copy(selected.begin(), selected.end(), y.data<int64_t>());
    outputs[0] = CpuValue::from_plain(Value(std::move(y)));
    return Status::OK();
  }

 private:
  Node node_;
  int64_t opset_;
};

}  // namespace

std::unique_ptr<NativeOp> make_nms_op(const Node& node, int64_t opset, const Graph& graph) {
  (void)graph;
  if (node.op_type != "NonMaxSuppression") return nullptr;
  return std::make_unique<NmsOp>(node, opset);
}

void register_nms_ops(NativeOpTable& t) {
  t.add({"", "NonMaxSuppression", 10, kNativeAnyOpset, {DType::kFloat32}, make_nms_op});
}

}  // namespace cpu
}  // namespace pyflame_rt
