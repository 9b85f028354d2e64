#include "devices/cpu/gemm_conv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>

#include "devices/cpu/thread_scratch.h"

namespace pyflame_rt {
namespace cpu {

namespace {

constexpr int64_t kPanel = 32;  // output channels per panel: two 16-float vectors
constexpr int kMaxPixels = 13;  // pixels per register block: 26 accumulators + 2 weights + 1 broadcast
// Rows of B (16 input channels of one tap each) per pass over the pixel blocks: 32 rows of a
// panel are 64 KB, their A (49 pixels) 100 KB, in L2 beside the next rows being prefetched.
// ResNet-50's layers on it, 1 thread, seven pairs: 32 rows 20.4-21.8 ms, 64 rows 21.2-24.0, 32
// faster in six (docs/performance.md, perf19). PFRT_GEMM_CONV_KC overrides, for measuring.
int64_t rows_per_pass() {
  static const int64_t kc = [] {
    const char* v = std::getenv("PFRT_GEMM_CONV_KC");
    return v && std::atol(v) > 0 ? std::atol(v) : int64_t{32};
  }();
  return kc;
}

struct GemmConvColTag;

// Pixels [0, NP) of one pixel block against kbs rows of one panel: a[kb * a_stride + p * 16 + i]
// (the block's first pixel at a), b[kb][16][32]; out0/out1 the panel's two nChw16c channel
// blocks at the block's first pixel. `start`: kStartZero (bias added here), kStartResidual (bias
// plus what out holds) or kStartPartial (out holds the sums over the rows before). `last`: the
// rows end the sum (ReLU then). Meanwhile `pf_floats` floats from `pf` on are prefetched into L2,
// pf_floats / kbs per row: the weights the next call reads, fetched while this one computes.
enum Start { kStartZero, kStartResidual, kStartPartial };

// GCC 12 warns that _mm512_max_ps's own _mm512_undefined_ps() "may be used uninitialized" (its
// pass-through operand under an all-ones mask, never read), as in winograd_conv.cpp.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
template <int NP>
__attribute__((target("avx512f"))) void panel_block(const float* a, int64_t a_stride, int64_t kbs, const float* b,
                                                    float* out0, float* out1, const float* bias, int start, bool last,
                                                    bool relu, const float* pf, int64_t pf_floats) {
  __m512 acc0[NP], acc1[NP];
  if (start == kStartPartial) {
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      acc0[p] = _mm512_loadu_ps(out0 + p * 16);
      acc1[p] = _mm512_loadu_ps(out1 + p * 16);
    }
  } else {
    const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
#pragma GCC unroll 16
    for (int p = 0; p < NP; ++p) {
      acc0[p] = start == kStartResidual ? _mm512_add_ps(b0, _mm512_loadu_ps(out0 + p * 16)) : b0;
      acc1[p] = start == kStartResidual ? _mm512_add_ps(b1, _mm512_loadu_ps(out1 + p * 16)) : b1;
    }
  }
  // Prefetch lines per row (of 16 floats), rounded up.
  const int64_t pf_step = kbs > 0 ? (pf_floats / kbs + 15) / 16 * 16 : 0;
  const float* pf_end = pf + pf_floats;
  for (int64_t kb = 0; kb < kbs; ++kb) {
    const float* ak = a + kb * a_stride;
    const float* bk = b + kb * 16 * kPanel;
    for (int64_t l = 0; l < pf_step && pf < pf_end; l += 16, pf += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(pf), _MM_HINT_T1);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      const __m512 w0 = _mm512_load_ps(bk + i * kPanel), w1 = _mm512_load_ps(bk + i * kPanel + 16);
#pragma GCC unroll 16
      for (int p = 0; p < NP; ++p) {
        const __m512 x = _mm512_set1_ps(ak[p * 16 + i]);
        acc0[p] = _mm512_fmadd_ps(x, w0, acc0[p]);
        acc1[p] = _mm512_fmadd_ps(x, w1, acc1[p]);
      }
    }
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int p = 0; p < NP; ++p) {
    if (last && relu) {
      acc0[p] = _mm512_max_ps(acc0[p], zero);
      acc1[p] = _mm512_max_ps(acc1[p], zero);
    }
    _mm512_storeu_ps(out0 + p * 16, acc0[p]);
    _mm512_storeu_ps(out1 + p * 16, acc1[p]);
  }
}
#pragma GCC diagnostic pop

using PanelFn = void (*)(const float*, int64_t, int64_t, const float*, float*, float*, const float*, int, bool, bool,
                        const float*, int64_t);
constexpr PanelFn kPanelFns[kMaxPixels + 1] = {
    nullptr,           panel_block<1>,  panel_block<2>,  panel_block<3>,  panel_block<4>,
    panel_block<5>,    panel_block<6>,  panel_block<7>,  panel_block<8>,  panel_block<9>,
    panel_block<10>,   panel_block<11>, panel_block<12>, panel_block<13>};

std::atomic<uint64_t> g_runs{0};

}  // namespace

uint64_t gemm_conv_runs() { return g_runs.load(std::memory_order_relaxed); }

bool GemmConv::cpu_supported() { return __builtin_cpu_supports("avx512f"); }

bool GemmConv::suits(int64_t cin, int64_t cout) { return cin > 0 && cout > 0 && cin % 16 == 0 && cout % kPanel == 0; }

GemmConv::GemmConv(const Tensor& weights, const Tensor& bias, bool relu, int64_t stride_h, int64_t stride_w,
                   int64_t pad_top, int64_t pad_left)
    : cin_(weights.dim(1)), cout_(weights.dim(0)), kh_(weights.dim(2)), kw_(weights.dim(3)), stride_h_(stride_h),
      stride_w_(stride_w), pad_top_(pad_top), pad_left_(pad_left), relu_(relu) {
  const int64_t taps = kh_ * kw_, kbs = cin_ / 16 * taps;
  const size_t n = static_cast<size_t>(cout_ * cin_ * taps);
  packed_.reset(static_cast<float*>(std::aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64)));
  if (!packed_) throw std::bad_alloc();
  const float* w = weights.data<float>();
  float* out = packed_.get();
  for (int64_t pn = 0; pn < cout_ / kPanel; ++pn) {
    for (int64_t icb = 0; icb < cin_ / 16; ++icb) {
      for (int64_t t = 0; t < taps; ++t) {
        float* dst = out + ((pn * kbs + icb * taps + t) * 16) * kPanel;
        for (int64_t i = 0; i < 16; ++i) {
          for (int64_t o = 0; o < kPanel; ++o) {
            dst[i * kPanel + o] = w[((pn * kPanel + o) * cin_ + icb * 16 + i) * taps + t];
          }
        }
      }
    }
  }
  bias_.assign(static_cast<size_t>(cout_), 0.f);
  if (bias.defined()) std::copy(bias.data<float>(), bias.data<float>() + cout_, bias_.begin());
}

void GemmConv::run(const float* src, float* dst, const Geometry& g, bool accumulate) const {
  g_runs.fetch_add(1, std::memory_order_relaxed);
  const int64_t taps = kh_ * kw_, icbs = cin_ / 16, kbs = icbs * taps, pixels = g.out_h * g.out_w;
  const int64_t in_plane = g.h * g.w * 16, out_plane = pixels * 16;
  // A 1x1, stride-1, unpadded convolution reads its input as it is ([cin/16][pixels][16]).
  const bool in_place = taps == 1 && stride_h_ == 1 && stride_w_ == 1 && pad_top_ == 0 && pad_left_ == 0 &&
                        g.out_h == g.h && g.out_w == g.w;
  float* col = in_place ? nullptr : thread_scratch<GemmConvColTag>(static_cast<size_t>(kbs * out_plane));
  const int64_t blocks = (pixels + kMaxPixels - 1) / kMaxPixels, panels = cout_ / kPanel, kc = rows_per_pass();
  const float* b_end = packed_.get() + panels * kbs * 16 * kPanel;
  for (int64_t n = 0; n < g.n; ++n) {
    const float* x = src + n * icbs * in_plane;
    float* y = dst + n * (cout_ / 16) * out_plane;
#pragma omp parallel
    {
      if (!in_place) {
#pragma omp for schedule(static)
        for (int64_t kb = 0; kb < kbs; ++kb) {
          const int64_t icb = kb / taps, ky = kb % taps / kw_, kx = kb % kw_;
          float* c = col + kb * out_plane;
          for (int64_t oy = 0; oy < g.out_h; ++oy) {
            const int64_t iy = oy * stride_h_ - pad_top_ + ky;
            for (int64_t ox = 0; ox < g.out_w; ++ox) {
              const int64_t ix = ox * stride_w_ - pad_left_ + kx;
              float* d = c + (oy * g.out_w + ox) * 16;
              if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) {
                std::memset(d, 0, 16 * sizeof(float));
              } else {
                std::memcpy(d, x + icb * in_plane + (iy * g.w + ix) * 16, 16 * sizeof(float));
              }
            }
          }
        }
      }
      const float* a = in_place ? x : col;
      const int64_t a_stride = in_place ? in_plane : out_plane;
      // The team splits (panel, pixel block) pairs in order, in equal shares: whole panels when
      // the panels divide evenly (each thread's panel weights read once), else a panel may be
      // shared by pixel blocks. Panels alone left threads idle: MobileNetV2's 96-channel
      // projections are 3 panels, so 2 threads took 2:1 (1.30x the 1-thread speed, ORT 1.65x).
      const int64_t items = panels * blocks, threads = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t i0 = items * me / threads, i1 = items * (me + 1) / threads;
      for (int64_t pn = i0 / blocks; pn * blocks < i1; ++pn) {
        const int64_t blk0 = std::max<int64_t>(0, i0 - pn * blocks), blk1 = std::min(blocks, i1 - pn * blocks);
        // Pixel blocks of nearly equal size (49 = 12 + 12 + 12 + 13), each at most kMaxPixels:
        // where block blk0 starts.
        int64_t first_pixel = 0;
        for (int64_t blk = 0; blk < blk0; ++blk) first_pixel += (pixels - first_pixel) / (blocks - blk);
        const float* b = packed_.get() + pn * kbs * 16 * kPanel;
        float* out0 = y + (2 * pn) * out_plane;
        float* out1 = out0 + out_plane;
        for (int64_t k0 = 0; k0 < kbs; k0 += kc) {
          const int64_t rows = std::min(kc, kbs - k0);
          // The next rows (this panel's or the next panel's first) while these compute, a share
          // of them in each pixel block's pass (the last panel's last rows prefetch nothing).
          const float* next = b + (k0 + rows) * 16 * kPanel;
          const int64_t next_floats = std::min<int64_t>(kc * 16 * kPanel, b_end - next);
          const int start = k0 > 0 ? kStartPartial : accumulate ? kStartResidual : kStartZero;
          const bool last = k0 + rows == kbs;
          const int64_t share = (next_floats / (blk1 - blk0) + 15) / 16 * 16;
          for (int64_t blk = blk0, p0 = first_pixel; blk < blk1; ++blk) {
            const int64_t np = (pixels - p0) / (blocks - blk);
            const float* pf = next + (blk - blk0) * share;
            const int64_t pf_floats = std::max<int64_t>(0, std::min<int64_t>(share, next + next_floats - pf));
            kPanelFns[np](a + k0 * a_stride + p0 * 16, a_stride, rows, b + k0 * 16 * kPanel, out0 + p0 * 16,
                          out1 + p0 * 16, bias_.data() + pn * kPanel, start, last, relu_, pf, pf_floats);
            p0 += np;
          }
        }
      }
    }
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
