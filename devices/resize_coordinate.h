// Resize's coordinate transform (output index -> source position on one axis), shared by the
// reference kernel and the CPU device's native one so that their interpolation points cannot
// drift apart.
//
// Evaluated in float, as ONNX Runtime does (its GetOriginalCoordinateFromResizedCoordinate takes
// and returns float; PyTorch float32 works in float too, rounding differently). In double the
// positions are closer to the spec's real numbers, but at a source position near 300 the
// float's rounding moves an interpolation weight by ~1e-5, and torchvision's detectors upsample
// their input image (320 -> 800): a 1e-5 (relative L2) difference in that first Resize grew
// through the random-weight backbones to 3e-4 in the scores and flipped near-equal candidates
// at the top-k cuts (FCOS: 14 of 100 detections).
// The mode names are the ONNX ones; tf_crop_and_resize is the reference kernel's own.
#pragma once

#include <cstdint>
#include <string>

namespace pyflame_rt {

// `scale` is output / input length (as given, or sizes[d] / in_len); align_corners divides by
// the spec's unrounded resized length in_len * scale, taken in double before the float step.
inline double resize_source_position(const std::string& coord, int64_t o, int64_t in_len, int64_t out_len,
                                     double scale) {
  const float x = static_cast<float>(o), s = static_cast<float>(scale);
  float pos;
  if (coord == "half_pixel") {
    pos = (x + 0.5f) / s - 0.5f;
  } else if (coord == "pytorch_half_pixel") {
    pos = out_len > 1 ? (x + 0.5f) / s - 0.5f : 0.0f;
  } else if (coord == "align_corners") {
    const float resized = static_cast<float>(static_cast<double>(in_len) * scale);
    pos = out_len == 1 ? 0.0f : x * static_cast<float>(in_len - 1) / (resized - 1.0f);
  } else if (coord == "tf_half_pixel_for_nn") {
    pos = (x + 0.5f) / s;
  } else {
    pos = x / s;  // asymmetric
  }
  return static_cast<double>(pos);
}

}  // namespace pyflame_rt
