// GemmConv (the panel product for convolutions with few output pixels, gemm_conv.h) against a
// convolution computed here in double, on nChw16c: 1x1 read in place and gathered (strided,
// padded), 3x3 and 7x7 with strides and asymmetric padding, pixel counts that split into
// blocks of different sizes (1, 13, 14, 27, 49), more input rows than one pass takes (cin 512
// 3x3: 288 rows; 496: a short last pass) and fewer, a residual in dst, batches, one and two
// threads.
#include "devices/cpu/gemm_conv.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "tests/common/random_tensor.h"

namespace pyflame_rt {
namespace {

int64_t blocked16(int64_t n, int64_t c, int64_t y, int64_t x, int64_t channels, int64_t h, int64_t w) {
  return (((n * (channels / 16) + c / 16) * h + y) * w + x) * 16 + c % 16;
}

struct Case {
  int64_t n, cin, cout, h, w, k, stride, pad_top, pad_left, out_h, out_w;
  bool bias, relu, residual;
};

// max |got - ref| / max |ref| over the output.
double error(const Case& c, uint32_t seed, int threads) {
  Tensor x = random_tensor({c.n, c.cin, c.h, c.w}, seed);
  Tensor wt = random_tensor({c.cout, c.cin, c.k, c.k}, seed + 1);
  Tensor b = c.bias ? random_tensor({c.cout}, seed + 2) : Tensor();
  Tensor z = random_tensor({c.n, c.cout, c.out_h, c.out_w}, seed + 3);
  std::vector<float> src(static_cast<size_t>(c.n * c.cin * c.h * c.w));
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t ch = 0; ch < c.cin; ++ch)
      for (int64_t y = 0; y < c.h; ++y)
        for (int64_t xx = 0; xx < c.w; ++xx)
          src[static_cast<size_t>(blocked16(n, ch, y, xx, c.cin, c.h, c.w))] =
              x.data<float>()[((n * c.cin + ch) * c.h + y) * c.w + xx];
  std::vector<float> dst(static_cast<size_t>(c.n * c.cout * c.out_h * c.out_w), NAN);
  if (c.residual) {
    for (int64_t n = 0; n < c.n; ++n)
      for (int64_t co = 0; co < c.cout; ++co)
        for (int64_t p = 0; p < c.out_h * c.out_w; ++p)
          dst[static_cast<size_t>(blocked16(n, co, p / c.out_w, p % c.out_w, c.cout, c.out_h, c.out_w))] =
              z.data<float>()[(n * c.cout + co) * c.out_h * c.out_w + p];
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  cpu::GemmConv conv(wt, b, c.relu, c.stride, c.stride, c.pad_top, c.pad_left);
  const uint64_t runs = cpu::gemm_conv_runs();
  conv.run(src.data(), dst.data(), {c.n, c.h, c.w, c.out_h, c.out_w}, c.residual);
  omp_set_num_threads(saved);
  EXPECT_EQ(cpu::gemm_conv_runs(), runs + 1);

  double err = 0, scale = 1e-6;
  for (int64_t n = 0; n < c.n; ++n) {
    for (int64_t co = 0; co < c.cout; ++co) {
      for (int64_t oy = 0; oy < c.out_h; ++oy) {
        for (int64_t ox = 0; ox < c.out_w; ++ox) {
          double acc = c.bias ? b.data<float>()[co] : 0.0;
          for (int64_t ci = 0; ci < c.cin; ++ci) {
            for (int64_t ky = 0; ky < c.k; ++ky) {
              for (int64_t kx = 0; kx < c.k; ++kx) {
                const int64_t y = oy * c.stride - c.pad_top + ky, xx = ox * c.stride - c.pad_left + kx;
                if (y < 0 || y >= c.h || xx < 0 || xx >= c.w) continue;
                acc += static_cast<double>(x.data<float>()[((n * c.cin + ci) * c.h + y) * c.w + xx]) *
                       wt.data<float>()[((co * c.cin + ci) * c.k + ky) * c.k + kx];
              }
            }
          }
          if (c.residual) acc += z.data<float>()[((n * c.cout + co) * c.out_h + oy) * c.out_w + ox];
          if (c.relu) acc = std::max(acc, 0.0);
          const double got = dst[static_cast<size_t>(blocked16(n, co, oy, ox, c.cout, c.out_h, c.out_w))];
          EXPECT_FALSE(std::isnan(got)) << "output (" << n << "," << co << "," << oy << "," << ox << ") not written";
          if (std::isnan(got)) return INFINITY;
          err = std::max(err, std::fabs(got - acc));
          scale = std::max(scale, std::fabs(acc));
        }
      }
    }
  }
  return err / scale;
}

TEST(GemmConvTest, MatchesDirectConvolution) {
  if (!cpu::GemmConv::cpu_supported()) GTEST_SKIP() << "no AVX-512 on this CPU";
  const std::vector<Case> cases = {
      // n cin cout  h  w  k s pt pl oh ow bias relu residual
      {1, 64, 64, 7, 7, 1, 1, 0, 0, 7, 7, true, true, false},         // 1x1 read in place, 49 = 12+12+12+13
      {1, 32, 32, 1, 1, 1, 1, 0, 0, 1, 1, true, false, false},        // one pixel
      {1, 16, 32, 2, 7, 1, 1, 0, 0, 2, 7, false, true, true},         // 14 = 7+7, residual
      {2, 48, 96, 3, 9, 1, 1, 0, 0, 3, 9, true, true, true},          // 27 = 9+9+9, batch of 2, 3 panels
      {1, 32, 64, 14, 14, 1, 2, 0, 0, 7, 7, true, false, false},      // 1x1 stride 2 (gathered)
      {1, 64, 32, 14, 14, 3, 2, 1, 1, 7, 7, true, true, false},       // layer4.0's conv2, small
      {1, 32, 32, 15, 15, 3, 2, 1, 1, 8, 8, false, true, false},      // bottom/right edge read, 64 pixels
      {1, 32, 64, 13, 13, 3, 2, 0, 1, 6, 7, true, false, false},      // asymmetric padding
      {1, 16, 32, 7, 7, 3, 1, 1, 1, 7, 7, true, true, true},          // 3x3 stride 1 with residual
      {1, 16, 32, 12, 12, 7, 2, 3, 3, 6, 6, true, true, false},       // 7x7 stride 2
      {1, 512, 64, 7, 7, 3, 1, 1, 1, 7, 7, true, true, true},         // 288 rows: 9 passes of 32
      {1, 496, 64, 7, 7, 3, 2, 1, 1, 4, 4, true, false, false},       // 279 rows: 8 passes and a tail of 23
      {1, 80, 64, 5, 5, 1, 1, 0, 0, 5, 5, false, true, false},        // 5 rows: one short pass
      // Panels the team does not divide: (panel, pixel block) pairs split, a panel shared.
      {1, 576, 96, 14, 14, 1, 1, 0, 0, 14, 14, true, false, true},    // MobileNetV2's projection: 3 panels x 16 blocks
      {1, 960, 160, 7, 7, 1, 1, 0, 0, 7, 7, true, false, true},       // 5 panels x 4 blocks
  };
  uint32_t seed = 300;
  for (const Case& c : cases) {
    for (int threads : {1, 2, 3}) {
      EXPECT_LT(error(c, seed, threads), 1e-5) << "n=" << c.n << " cin=" << c.cin << " cout=" << c.cout << " " << c.h
                                               << "x" << c.w << " k=" << c.k << " stride=" << c.stride
                                               << " residual=" << c.residual << " threads=" << threads;
    }
    seed += 5;
  }
}

TEST(GemmConvTest, SuitsChannelsInWholeBlocks) {
  EXPECT_TRUE(cpu::GemmConv::suits(16, 32));
  EXPECT_TRUE(cpu::GemmConv::suits(2048, 512));
  EXPECT_FALSE(cpu::GemmConv::suits(8, 32));    // nChw16c would carry padding channels
  EXPECT_FALSE(cpu::GemmConv::suits(16, 48));   // not whole 32-channel panels
  EXPECT_FALSE(cpu::GemmConv::suits(0, 32));
}

}  // namespace
}  // namespace pyflame_rt
