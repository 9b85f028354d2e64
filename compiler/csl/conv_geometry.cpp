// WindowGeometry: output-stationary tiles of Conv and pooling.
#include "compiler/csl/conv_geometry.h"

#include "compiler/csl/lowering.h"

namespace pyflame_rt::csl {

namespace {
int64_t attr(const CslOpSpec& s, const char* k, size_t i, int64_t dflt) {
  auto it = s.ints.find(k);
  return it == s.ints.end() || it->second.size() <= i ? dflt : it->second[i];
}
}  // namespace

Expected<WindowGeometry> WindowGeometry::make(const CslOpSpec& spec, int64_t kh, int64_t kw, int kx, int ky) {
  const auto& xs = spec.inputs[0].shape;
  const auto& ys = spec.output.shape;
  if (xs.size() != 4 || ys.size() != 4 || xs[0] != 1) {
    return not_implemented("expects a [1, C, H, W] input and output (batch 1, 2-D), got input ", py_shape(xs),
                           " output ", py_shape(ys));
  }
  WindowGeometry g;
  g.C = xs[1]; g.H = xs[2]; g.W = xs[3];
  g.Co = ys[1]; g.Ho = ys[2]; g.Wo = ys[3];
  g.KH = attr(spec, "kernel_shape", 0, kh);
  g.KW = attr(spec, "kernel_shape", 1, kw);
  g.sh = attr(spec, "strides", 0, 1);
  g.sw = attr(spec, "strides", 1, 1);
  g.dh = attr(spec, "dilations", 0, 1);
  g.dw = attr(spec, "dilations", 1, 1);
  g.pt = attr(spec, "pads", 0, 0);
  g.pl = attr(spec, "pads", 1, 0);
  g.pb = attr(spec, "pads", 2, 0);
  g.pr = attr(spec, "pads", 3, 0);
  g.kx = kx;
  g.ky = ky;
  g.th = ceil_div(g.Ho, ky);
  g.tw = ceil_div(g.Wo, kx);
  g.ih = (g.th - 1) * g.sh + (g.KH - 1) * g.dh + 1;
  g.iw = (g.tw - 1) * g.sw + (g.KW - 1) * g.dw + 1;
  return g;
}

std::string WindowGeometry::py_tiles(const std::string& x, const std::string& fill) const {
  // halo_tiles(x, pad_top, pad_left, stride_h, stride_w, th, tw, ih, iw, kx, ky, fill) is a
  // helper of every generated run.py.
  return subst("halo_tiles({x}, {pt}, {pl}, {sh}, {sw}, {th}, {tw}, {ih}, {iw}, {kx}, {ky}, {fill})",
               {{"x", x}, {"pt", std::to_string(pt)}, {"pl", std::to_string(pl)}, {"sh", std::to_string(sh)},
                {"sw", std::to_string(sw)}, {"th", std::to_string(th)}, {"tw", std::to_string(tw)},
                {"ih", std::to_string(ih)}, {"iw", std::to_string(iw)}, {"kx", std::to_string(kx)},
                {"ky", std::to_string(ky)}, {"fill", fill}});
}

std::string WindowGeometry::py_untile() const {
  return subst("buf.reshape({ky}, {kx}, {Co}, {th}, {tw}).transpose(2, 0, 3, 1, 4).reshape(1, {Co}, {ky} * {th}, {kx} * {tw})[:, :, :{Ho}, :{Wo}]",
               {{"ky", std::to_string(ky)}, {"kx", std::to_string(kx)}, {"Co", std::to_string(Co)},
                {"th", std::to_string(th)}, {"tw", std::to_string(tw)}, {"Ho", std::to_string(Ho)},
                {"Wo", std::to_string(Wo)}});
}

}  // namespace pyflame_rt::csl
