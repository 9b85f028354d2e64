// Winograd F(4x4, 3x3) convolution for 3x3, stride-1, ungrouped convolutions on AVX2.
//
// oneDNN 2.6 has Winograd only for AVX-512, so on AVX2 machines its 3x3 convolutions are
// direct and already run near the FMA peak: fewer multiplies is the only way to go faster.
// F(4x4, 3x3) computes each 4x4 output tile from a 6x6 input tile with 36 multiplies per
// input/output channel pair instead of 144:
//   1. input transform:  V[p][tile][cin]  = (B^T d B)[p]  for every 6x6 input tile d;
//   2. 36 matrix products M[p] = V[p] (tiles x cin) * U[p] (cin x cout), U = G g G^T
//      transformed and packed once from the weights at construction; our own kernel, since
//      oneDNN's sgemm repacks U on every call, which costs as much as the product when there
//      are few tiles (ResNet-50's 14x14 stage);
//   3. output transform: the 4x4 tile = A^T m A, plus bias and ReLU.
// F(4x4) rounds worse than a direct convolution: the output transform's coefficients amplify
// the rounding of the 36 sums over cin. Two choices keep that down (docs/performance.md,
// "Winograd accuracy"; bench/winograd_points.py models them): the interpolation points
// 0, 1, -1, 1/2, -2 and infinity instead of the usual 0, +-1, +-2 (1.5x less amplification),
// and the sums over cin taken in blocks of 32 channels, each block summed from zero.
// Source and destination are in oneDNN's nChw8c layout (8 channels innermost), the layout the
// AVX2 convolutions around it use, so each transform works on 8 channels per vector.
// On AVX-512 a second variant (channel block 16) reads and writes nChw16c, the layout oneDNN's
// AVX-512 kernels use, with 16-float vectors in the transforms and a 12x32 product kernel, the
// tiles in chunks that one thread takes through all three steps. It beats oneDNN's own
// F(2x2,3x3) Winograd from 28x28 outputs (ResNet-50's 56x56 and 28x28 layers: 0.6-0.8x its time
// with one sum over cin, 0.7-0.9x with the blocked sums) and loses at 7x7 (4 tiles) and, with
// its weights cold, at 14x14 (docs/performance.md, "Winograd on AVX-512", "Winograd accuracy").
// It is off by default (FCN-ResNet50 passes the zoo with it, but narrowly; conv_op.cpp) except
// for narrow outputs (at most 32 channels, from 28x28 outputs: DenseNet's 3x3 layers), where
// oneDNN's F(2x2) is slower than its own direct convolution and ours 2x faster than either. Both variants pack the transformed weights alike (packed_bytes() is
// the same bytes), so a plan file's blob serves either.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "graph/tensor.h"

namespace pyflame_rt {
namespace cpu {

// How many times WinogradConv::run ran in this process with channel block 8 or 16 (tests
// compare before and after to tell which kernel a convolution took).
uint64_t winograd_conv_runs(int block);

class WinogradConv {
 public:
  // Sizes of one run: input n x cin x h x w, top/left zero padding, output out_h x out_w.
  struct Geometry {
    int64_t n, h, w, pad_top, pad_left, out_h, out_w;
  };

  // True on a CPU that runs the variant for channel blocks of `block`: 8 needs AVX2 and FMA,
  // 16 AVX-512F.
  static bool cpu_supported(int block = 8);
  // Whether Winograd is worth it for this shape: enough output tiles for the 36 products to
  // beat a direct convolution, and channels in whole blocks of `block`.
  static bool suits(int64_t cin, int64_t cout, const Geometry& g, int block = 8);

  // `weights` [cout, cin, 3, 3] f32; `bias` [cout] or undefined; `relu` applies max(0, x).
  // `storage` float16/bfloat16 (weights that were half): the transformed weights are kept as
  // scaled fp16 (half_weights.h: transformed_scale), halving their memory, and each product expands its block of 16 columns into
  // the worker's scratch (cin x 16 floats, in L1/L2) before it multiplies.
  // `block` 8 or 16: the channel block of the layout run() reads and writes (nChw8c, nChw16c).
  WinogradConv(const Tensor& weights, const Tensor& bias, bool relu, DType storage = DType::kFloat32, int block = 8);
  WinogradConv(const WinogradConv&) = delete;  // u_data_ points into the object
  WinogradConv& operator=(const WinogradConv&) = delete;
  // On weights transformed before (packed_bytes() of an equal convolution, e.g. a plan file's,
  // viewed in place and kept alive): nullptr when their size is not that of cin x cout.
  static std::shared_ptr<const WinogradConv> from_packed(const Tensor& packed, int64_t cin, int64_t cout,
                                                         const Tensor& bias, bool relu,
                                                         DType storage = DType::kFloat32, int block = 8);
  // What packed_bytes() are, a plan file's blob `impl`: transformed weights on other points
  // (the first version's 0, +-1, +-2: "pyflame_rt-winograd-f4x4") are not these, and are packed again.
  static constexpr const char* kPackedImpl = "pyflame_rt-winograd-f4x4-points-0,1,-1,1/2,-2";
  // The transformed weights as f32 bytes (uint8 [n], a copy), what from_packed() takes (the
  // same bytes for either channel block).
  Tensor packed_bytes() const;
  int block() const { return block_; }

  // src: n x cin x h x w, dst: n x cout x out_h x out_w, both nChw8c (block 8) or nChw16c
  // (block 16). Uses the calling thread's OpenMP team.
  void run(const float* src, float* dst, const Geometry& g) const;

 private:
  WinogradConv() = default;
  int64_t cin_ = 0, cout_ = 0, cout_pad_ = 0;  // cout_pad_: cout rounded up to the 16-column blocks
  // Transformed weights, one cin x cout_pad matrix per position, packed in blocks of 16
  // columns: [36][cout_pad / 16][cin][16].
  std::vector<float> u_;
  const float* u_data_ = nullptr;  // u_, or the packed bytes of from_packed(); nullptr when half
  std::vector<uint16_t> u_half_;   // the same as scaled fp16 (half storage): u * u_scale_
  DType storage_ = DType::kFloat32;
  float u_scale_ = 1.f;
  void keep_half(DType storage);   // u_data_'s values into u_half_, dropping the f32 ones
  Tensor packed_;                  // from_packed(): keeps those bytes alive
  std::vector<float> bias_;  // [cout], zeros without bias
  bool relu_ = false;
  int block_ = 8;
  // The 36 products on AVX2 (6x16 kernel), all tiles at once.
  void multiply8(const float* v, float* m, int64_t tiles) const;
  // Block 16: the whole convolution in chunks of tiles (12x32 AVX-512 kernel for the products).
  void run16(const float* src, float* dst, const Geometry& g) const;
  // Bytes of V and M per chunk in run16 (PFRT_WINOGRAD16_CHUNK_KB overrides, for measuring).
  int64_t chunk_bytes_ = default_chunk_bytes();
  static int64_t default_chunk_bytes();
};

}  // namespace cpu
}  // namespace pyflame_rt
