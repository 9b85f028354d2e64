// A direct convolution as one matrix product per image for convolutions with few output
// pixels and many weights (ResNet-50's 7x7 stage: 49 pixels, up to 9.4 MB of weights), on
// AVX-512, reading and writing nChw16c.
//
// oneDNN 2.6's direct kernels (and its F(2x2,3x3) Winograd, whose weights are 16/9 the size)
// reach ~57-66 GMAC/s on these shapes on this host, ORT's ~58-64. Seen as a product
// C[pixels x cout] = A[pixels x cin*kh*kw] * B[cin*kh*kw x cout], the output is small enough that
// a pass of rows of one 32-channel column panel of B stays in L2 while every pixel block of A
// goes over it: B is read from memory once per run (in a model run ResNet-50's layer4 weights
// come from memory, ~13 GB/s on one core here, not from L3), and the 13x32 register
// block (26 accumulators, 2 weight vectors, 1 broadcast) does 26 FMAs per 15 loads (13 of them
// broadcasts from L1). B's rows go in passes of 32 over all pixel blocks, the next 32 prefetched
// into L2 meanwhile, so weights that come from memory stream behind the arithmetic.
//   A: the input gathered once per run into [cin/16 * kh*kw][pixels][16] (im2col on 16-channel
//      blocks; a 1x1 stride-1 unpadded convolution reads nChw16c in place, it is that already);
//   B: packed at construction as [cout/32][cin/16 * kh*kw][16][32];
//   C: written as nChw16c, with bias, an optional residual already in dst (the sum post-op of
//      a fused Conv + Add) and an optional ReLU, in that order.
// (Panel, pixel block) pairs are split over the calling thread's OpenMP team in equal shares:
// whole panels when the team divides them. docs/performance.md, "ResNet-50's
// convolutions (perf19, stop 19)".
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

// How many times GemmConv::run ran in this process (tests compare before and after to tell that
// a convolution took this kernel).
uint64_t gemm_conv_runs();

class GemmConv {
 public:
  // One run: input n x cin x h x w, output n x cout x out_h x out_w.
  struct Geometry {
    int64_t n, h, w, out_h, out_w;
  };
  // AVX-512F (the kernel's 16-float vectors and nChw16c).
  static bool cpu_supported();
  // Channels in whole blocks: cin by 16 (nChw16c's block, no padding channels read), cout by 32
  // (the panel width).
  static bool suits(int64_t cin, int64_t cout);
  // `weights` [cout, cin, kh, kw] f32; `bias` [cout] or undefined; strides and top/left padding
  // (the bottom/right padding follows from the output size run() is given); `relu` max(0, x).
  GemmConv(const Tensor& weights, const Tensor& bias, bool relu, int64_t stride_h, int64_t stride_w,
           int64_t pad_top, int64_t pad_left);
  // src nChw16c (n x cin x h x w), dst nChw16c (n x cout x out_h x out_w). `accumulate`: dst
  // holds a residual added to the convolution (before the ReLU). Uses the calling thread's
  // OpenMP team.
  void run(const float* src, float* dst, const Geometry& g, bool accumulate) const;

 private:
  int64_t cin_, cout_, kh_, kw_, stride_h_, stride_w_, pad_top_, pad_left_;
  bool relu_;
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> packed_;  // B: [cout/32][cin/16 * kh*kw][16][32], 64-byte aligned
  std::vector<float> bias_;    // [cout], zeros without bias
};

}  // namespace cpu
}  // namespace pyflame_rt
