// The geometry of a 2-D window op (Conv, pooling) on output-stationary tiles: the output's
// Ho x Wo plane is cut into th x tw tiles, one per PE of a kx x ky grid; each PE also holds
// the input tile its outputs read, ih x iw including the halo (rows/columns its neighbours
// own). run.py cuts the halo tiles from the zero-padded input.
#pragma once

#include <cstdint>
#include <string>

#include "compiler/csl/csl_op.h"
#include "graph/status.h"

namespace pyflame_rt::csl {

struct WindowGeometry {
  int64_t C = 0, H = 0, W = 0;      // input channels and plane
  int64_t Co = 0, Ho = 0, Wo = 0;   // output channels and plane
  int64_t KH = 1, KW = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;  // pads top, left, bottom, right
  int64_t th = 0, tw = 0, ih = 0, iw = 0;  // per-PE output and input tile
  int kx = 1, ky = 1;                      // spatial PE grid

  // Reads shapes and attributes (kernel_shape, strides, dilations, pads) of a [1, C, H, W]
  // input; kernel from `kernel` when kernel_shape is absent. Tiles over kx x ky PEs.
  static Expected<WindowGeometry> make(const CslOpSpec& spec, int64_t kh, int64_t kw, int kx, int ky);
  // python: the (ky, kx, C, ih, iw) halo tiles of tensor expression `x`, padded with `fill`.
  std::string py_tiles(const std::string& x, const std::string& fill) const;
  // python: `buf` (ky, kx, Co, th, tw) back to the (1, Co, Ho, Wo) tensor.
  std::string py_untile() const;
};

}  // namespace pyflame_rt::csl
