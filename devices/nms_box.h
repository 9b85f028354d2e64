// The box and IoU of NonMaxSuppression, shared by the reference kernel and the CPU device's
// native one so that their keep/suppress decisions cannot drift apart (the native kernel is
// checked for the same selection, box for box).
#pragma once

#include <algorithm>

namespace pyflame_rt {

struct NmsBox {
  double y1, x1, y2, x2;
};

// ONNX: corners [y1, x1, y2, x2] in either order, or [xc, yc, w, h] when center_point_box = 1.
inline NmsBox nms_box(double a, double b, double c, double d, bool center) {
  if (center) return {b - d / 2, a - c / 2, b + d / 2, a + c / 2};
  return {std::min(a, c), std::min(b, d), std::max(a, c), std::max(b, d)};
}

inline double nms_iou(const NmsBox& p, const NmsBox& q) {
  double ih = std::max(0.0, std::min(p.y2, q.y2) - std::max(p.y1, q.y1));
  double iw = std::max(0.0, std::min(p.x2, q.x2) - std::max(p.x1, q.x1));
  double inter = ih * iw;
  double uni = (p.y2 - p.y1) * (p.x2 - p.x1) + (q.y2 - q.y1) * (q.x2 - q.x1) - inter;
  return uni <= 0 ? 0.0 : inter / uni;
}

}  // namespace pyflame_rt
