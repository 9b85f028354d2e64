#include "devices/cpu/winograd_conv.h"

#include "devices/cpu/half_weights.h"
#include "devices/cpu/thread_scratch.h"

#include <cstring>

#include <immintrin.h>

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>

namespace pyflame_rt {
namespace cpu {

namespace {

constexpr int kTile = 6;  // input tile (and transform) size: 4 outputs + 3 - 1
constexpr int kOut = 4;   // output tile size
constexpr int kPositions = kTile * kTile;

// The calling thread's scratch for V and M (one run at a time per thread).
struct WinogradScratchTag;

// The transforms' rows, written once for both vector widths (V the vector type, P the
// intrinsics' prefix). Points 0, 1, -1, 1/2, -2 and infinity instead of the usual 0, +-1, +-2:
// the products' rounding, which the output transform amplifies, is what F(4x4) loses most
// (bench/winograd_points.py models it), and these points amplify it 1.5x less (Barabasz et al.,
// "Error analysis and improving the accuracy of Winograd convolution for deep neural
// networks", 2020). The exact matrices (rows scaled by powers of two, which round nothing):
//   B^T = [1 -3/2 -2 3/2 1 0; 0 -1 1/2 5/2 1 0; 0 1 -5/2 1/2 1 0;
//          0 -2 -1 2 1 0;      0 1 -2 -1 2 0;   0 1 -3/2 -2 3/2 1]
//   G   = [1 0 0; 1/3 1/3 1/3; -1/3 1/3 -1/3; -16/15 -8/15 -4/15; 4/15 -8/15 16/15; 0 0 1]
//   A^T = [1 1 1 1 1/8 0; 0 1 -1 1/2 -1/4 0; 0 1 1 1/4 1/2 0; 0 1 -1 1/8 -1 1]
// (kWeightTransform below is G; A^T[(G g G^T) . (B^T d B)]A is the 3x3 correlation exactly.)
// Input rows: 16 adds/FMAs per 6 vectors (the old points took 12), output rows 12 (10).
#define PFRT_WINOGRAD_ROWS(SUFFIX, TARGET, V, P)                                                 \
  /* The rows of B^T applied to d0..d5 (one column or row of a tile). */                         \
  __attribute__((target(TARGET))) inline void input_rows##SUFFIX(const V d[6], V r[6]) {         \
    const V two = P##_set1_ps(2.f), three_halves = P##_set1_ps(1.5f);                            \
    const V p = P##_sub_ps(d[3], d[1]), q = P##_sub_ps(d[4], d[2]);                              \
    /* d0 + d4 - 2 d2 + 3/2 (d3 - d1);  d1 + d5 - 2 d3 + 3/2 (d4 - d2) */                        \
    r[0] = P##_fmadd_ps(three_halves, p, P##_fnmadd_ps(two, d[2], P##_add_ps(d[0], d[4])));      \
    r[5] = P##_fmadd_ps(three_halves, q, P##_fnmadd_ps(two, d[3], P##_add_ps(d[1], d[5])));      \
    /* (p + q) + 3/2 (d2 + d3);  (q - p) + 3/2 (d3 - d2) */                                      \
    r[1] = P##_fmadd_ps(three_halves, P##_add_ps(d[2], d[3]), P##_add_ps(p, q));                 \
    r[2] = P##_fmadd_ps(three_halves, P##_sub_ps(d[3], d[2]), P##_sub_ps(q, p));                 \
    r[3] = P##_fmadd_ps(two, p, q); /* 2 p + q */                                                \
    r[4] = P##_fmsub_ps(two, q, p); /* 2 q - p */                                                \
  }                                                                                              \
  /* The rows of A^T applied to m0..m5. */                                                       \
  __attribute__((target(TARGET))) inline void output_rows##SUFFIX(const V m[6], V o[4]) {        \
    const V half = P##_set1_ps(0.5f), quarter = P##_set1_ps(0.25f), eighth = P##_set1_ps(0.125f); \
    const V s = P##_add_ps(m[1], m[2]), d = P##_sub_ps(m[1], m[2]);                              \
    o[0] = P##_fmadd_ps(eighth, m[4], P##_add_ps(P##_add_ps(m[0], s), m[3]));                    \
    o[1] = P##_fnmadd_ps(quarter, m[4], P##_fmadd_ps(half, m[3], d));                            \
    o[2] = P##_fmadd_ps(half, m[4], P##_fmadd_ps(quarter, m[3], s));                             \
    o[3] = P##_add_ps(P##_fmadd_ps(eighth, m[3], P##_sub_ps(d, m[4])), m[5]);                    \
  }

PFRT_WINOGRAD_ROWS(8, "avx2,fma", __m256, _mm256)
PFRT_WINOGRAD_ROWS(16, "avx512f", __m512, _mm512)
#undef PFRT_WINOGRAD_ROWS

// G: the weight transform U = G g G^T (in double, at construction).
constexpr double kWeightTransform[kTile][3] = {
    {1, 0, 0}, {1.0 / 3, 1.0 / 3, 1.0 / 3}, {-1.0 / 3, 1.0 / 3, -1.0 / 3}, {-16.0 / 15, -8.0 / 15, -4.0 / 15},
    {4.0 / 15, -8.0 / 15, 16.0 / 15}, {0, 0, 1}};

// The products sum cin terms in blocks of kSumBlock, each block from zero and then added to the
// sum so far: a float32 chain over all cin rounds each step at the size of the whole partial
// sum (F(4x4)'s error at cin 256 modelled 1.7e-6 sequential, 9.5e-7 in blocks of 64, 7.6e-7 in
// blocks of 32; the extra load, add and store per 32 FMAs of each accumulator are a few %).
constexpr int64_t kSumBlock = 32;

// One 6x6 input tile of 8 channels -> its 36 transformed vectors, written at v + p * stride.
__attribute__((target("avx2,fma"))) void transform_input_tile(const float* plane, int64_t h, int64_t w, int64_t y0,
                                                              int64_t x0, float* v, int64_t stride) {
  __m256 d[kTile][kTile];
  bool inside = y0 >= 0 && x0 >= 0 && y0 + kTile <= h && x0 + kTile <= w;
  for (int i = 0; i < kTile; ++i) {
    for (int j = 0; j < kTile; ++j) {
      int64_t y = y0 + i, x = x0 + j;
      d[i][j] = inside || (y >= 0 && y < h && x >= 0 && x < w) ? _mm256_loadu_ps(plane + (y * w + x) * 8)
                                                              : _mm256_setzero_ps();
    }
  }
  __m256 col[kTile], rows[kTile][kTile];
  for (int j = 0; j < kTile; ++j) {  // B^T d: down each column
    __m256 in[kTile], out[kTile];
    for (int i = 0; i < kTile; ++i) in[i] = d[i][j];
    input_rows8(in, out);
    for (int i = 0; i < kTile; ++i) rows[i][j] = out[i];
  }
  for (int i = 0; i < kTile; ++i) {  // (B^T d) B: along each row
    input_rows8(rows[i], col);
    for (int j = 0; j < kTile; ++j) _mm256_storeu_ps(v + (i * kTile + j) * stride, col[j]);
  }
}

// The 36 products of one tile for 8 output channels (read at m + p * stride) -> its 4x4
// outputs (those inside out_h x out_w), with bias and ReLU.
__attribute__((target("avx2,fma"))) void transform_output_tile(const float* m, int64_t stride, const float* bias,
                                                               bool relu, float* plane, int64_t out_h, int64_t out_w,
                                                               int64_t y0, int64_t x0) {
  __m256 cols[kOut][kTile];
  for (int j = 0; j < kTile; ++j) {  // A^T m: down each column
    __m256 in[kTile], out[kOut];
    for (int i = 0; i < kTile; ++i) in[i] = _mm256_loadu_ps(m + (i * kTile + j) * stride);
    output_rows8(in, out);
    for (int r = 0; r < kOut; ++r) cols[r][j] = out[r];
  }
  const __m256 b = _mm256_loadu_ps(bias), zero = _mm256_setzero_ps();
  for (int r = 0; r < kOut; ++r) {  // (A^T m) A: along each row
    int64_t y = y0 + r;
    if (y >= out_h) break;
    __m256 o[kOut];
    output_rows8(cols[r], o);
    for (int c = 0; c < kOut; ++c) {
      int64_t x = x0 + c;
      if (x >= out_w) break;
      __m256 val = _mm256_add_ps(o[c], b);
      if (relu) val = _mm256_max_ps(val, zero);
      _mm256_storeu_ps(plane + (y * out_w + x) * 8, val);
    }
  }
}

// C[r][0..16) = sum_k A[r][k] * B[k][0..16) for ROWS <= 6 rows: the 16 columns in two vectors,
// each row's A element broadcast. The 12 accumulators are named variables, not an array: GCC
// keeps an array of vectors on the stack and stores it on every iteration (3x slower).
// `add`: C += the sum (a later block of k, kSumBlock), else C = it.
template <int ROWS>
__attribute__((target("avx2,fma"))) void multiply_rows(const float* a, int64_t lda, const float* b, int64_t k_size,
                                                       float* c, int64_t ldc, bool add) {
  static_assert(ROWS >= 1 && ROWS <= 6, "the kernel has 6 rows of accumulators");
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define PFRT_WINOGRAD_ROW(r)                                       \
  if constexpr (ROWS > r) {                                        \
    __m256 x = _mm256_broadcast_ss(a + r * lda + k);               \
    c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0);                     \
    c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);                     \
  }
  for (int64_t k = 0; k < k_size; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * 16), b1 = _mm256_loadu_ps(b + k * 16 + 8);
    PFRT_WINOGRAD_ROW(0) PFRT_WINOGRAD_ROW(1) PFRT_WINOGRAD_ROW(2)
    PFRT_WINOGRAD_ROW(3) PFRT_WINOGRAD_ROW(4) PFRT_WINOGRAD_ROW(5)
  }
#undef PFRT_WINOGRAD_ROW
#define PFRT_WINOGRAD_STORE(r)                                                \
  if constexpr (ROWS > r) {                                                   \
    if (add) {                                                                \
      c##r##0 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc), c##r##0);         \
      c##r##1 = _mm256_add_ps(_mm256_loadu_ps(c + r * ldc + 8), c##r##1);     \
    }                                                                         \
    _mm256_storeu_ps(c + r * ldc, c##r##0);                                   \
    _mm256_storeu_ps(c + r * ldc + 8, c##r##1);                               \
  }
  PFRT_WINOGRAD_STORE(0) PFRT_WINOGRAD_STORE(1) PFRT_WINOGRAD_STORE(2)
  PFRT_WINOGRAD_STORE(3) PFRT_WINOGRAD_STORE(4) PFRT_WINOGRAD_STORE(5)
#undef PFRT_WINOGRAD_STORE
}

// One position's product for a block of 16 output channels: C (rows x 16, stride ldc) =
// A (rows x k_size, row-major) * B (k_size x 16, packed), k in blocks of kSumBlock. B stays in
// L1 across the rows.
void multiply_column_block(const float* a, int64_t rows, int64_t k_size, const float* b, float* c, int64_t ldc) {
  constexpr int kRows = 6;
  for (int64_t k0 = 0; k0 < k_size; k0 += kSumBlock) {
    const int64_t kb = std::min(kSumBlock, k_size - k0);
    const float* bk = b + k0 * 16;
    const bool add = k0 > 0;
    int64_t r = 0;
    for (; r + kRows <= rows; r += kRows) multiply_rows<kRows>(a + r * k_size + k0, k_size, bk, kb, c + r * ldc, ldc, add);
    const float* ar = a + r * k_size + k0;
    float* cr = c + r * ldc;
    switch (rows - r) {
      case 5: multiply_rows<5>(ar, k_size, bk, kb, cr, ldc, add); break;
      case 4: multiply_rows<4>(ar, k_size, bk, kb, cr, ldc, add); break;
      case 3: multiply_rows<3>(ar, k_size, bk, kb, cr, ldc, add); break;
      case 2: multiply_rows<2>(ar, k_size, bk, kb, cr, ldc, add); break;
      case 1: multiply_rows<1>(ar, k_size, bk, kb, cr, ldc, add); break;
      default: break;
    }
  }
}

__attribute__((target("avx512f"))) void transform_input_tile16(const float* plane, int64_t h, int64_t w, int64_t y0,
                                                               int64_t x0, float* v, int64_t stride) {
  __m512 rows[kTile][kTile];
  const bool inside = y0 >= 0 && x0 >= 0 && y0 + kTile <= h && x0 + kTile <= w;
  for (int j = 0; j < kTile; ++j) {  // B^T d: down each column, loaded as it is used
    __m512 in[kTile], out[kTile];
    const int64_t x = x0 + j;
    for (int i = 0; i < kTile; ++i) {
      const int64_t y = y0 + i;
      in[i] = inside || (y >= 0 && y < h && x >= 0 && x < w) ? _mm512_loadu_ps(plane + (y * w + x) * 16)
                                                             : _mm512_setzero_ps();
    }
    input_rows16(in, out);
    for (int i = 0; i < kTile; ++i) rows[i][j] = out[i];
  }
  for (int i = 0; i < kTile; ++i) {  // (B^T d) B: along each row
    __m512 col[kTile];
    input_rows16(rows[i], col);
    for (int j = 0; j < kTile; ++j) _mm512_storeu_ps(v + (i * kTile + j) * stride, col[j]);
  }
}

// GCC 12 warns that _mm512_max_ps's own _mm512_undefined_ps() "may be used uninitialized" (its
// pass-through operand under an all-ones mask, never read).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void transform_output_tile16(const float* m, int64_t stride, const float* bias,
                                                                bool relu, float* plane, int64_t out_h, int64_t out_w,
                                                                int64_t y0, int64_t x0) {
  __m512 cols[kOut][kTile];
  for (int j = 0; j < kTile; ++j) {
    __m512 in[kTile], out[kOut];
    for (int i = 0; i < kTile; ++i) in[i] = _mm512_loadu_ps(m + (i * kTile + j) * stride);
    output_rows16(in, out);
    for (int r = 0; r < kOut; ++r) cols[r][j] = out[r];
  }
  const __m512 b = _mm512_loadu_ps(bias), zero = _mm512_setzero_ps();
  for (int r = 0; r < kOut; ++r) {
    const int64_t y = y0 + r;
    if (y >= out_h) break;
    __m512 o[kOut];
    output_rows16(cols[r], o);
    for (int c = 0; c < kOut; ++c) {
      const int64_t x = x0 + c;
      if (x >= out_w) break;
      __m512 val = _mm512_add_ps(o[c], b);
      if (relu) val = _mm512_max_ps(val, zero);
      _mm512_storeu_ps(plane + (y * out_w + x) * 16, val);
    }
  }
}
#pragma GCC diagnostic pop

// C[r][0..16 COLS) = sum_k A[r][k] * B[k][...] for ROWS <= 12 rows and COLS (1 or 2) packed
// blocks of 16 columns (the second `b_next` floats after the first): 24 named accumulators,
// two B vectors and one broadcast per row for each k. `add`: C += the sum (a later block of k,
// kSumBlock), else C = it.
template <int ROWS, int COLS>
__attribute__((target("avx512f"))) void multiply_rows16(const float* a, int64_t lda, const float* b, int64_t b_next,
                                                        int64_t k_size, float* c, int64_t ldc, bool add) {
  static_assert(ROWS >= 1 && ROWS <= 12 && (COLS == 1 || COLS == 2), "the kernel has 12 x 2 accumulators");
  __m512 c0a = _mm512_setzero_ps(), c0b = c0a, c1a = c0a, c1b = c0a, c2a = c0a, c2b = c0a, c3a = c0a, c3b = c0a;
  __m512 c4a = c0a, c4b = c0a, c5a = c0a, c5b = c0a, c6a = c0a, c6b = c0a, c7a = c0a, c7b = c0a;
  __m512 c8a = c0a, c8b = c0a, c9a = c0a, c9b = c0a, c10a = c0a, c10b = c0a, c11a = c0a, c11b = c0a;
  const float* b1p = b + b_next;
#define PFRT_WINOGRAD16_ROW(r)                                      \
  if constexpr (ROWS > r) {                                         \
    __m512 x = _mm512_set1_ps(a[r * lda + k]);                      \
    c##r##a = _mm512_fmadd_ps(x, b0, c##r##a);                      \
    if constexpr (COLS > 1) c##r##b = _mm512_fmadd_ps(x, b1, c##r##b); \
  }
  for (int64_t k = 0; k < k_size; ++k) {
    __m512 b0 = _mm512_loadu_ps(b + k * 16);
    __m512 b1 = COLS > 1 ? _mm512_loadu_ps(b1p + k * 16) : b0;
    PFRT_WINOGRAD16_ROW(0) PFRT_WINOGRAD16_ROW(1) PFRT_WINOGRAD16_ROW(2) PFRT_WINOGRAD16_ROW(3)
    PFRT_WINOGRAD16_ROW(4) PFRT_WINOGRAD16_ROW(5) PFRT_WINOGRAD16_ROW(6) PFRT_WINOGRAD16_ROW(7)
    PFRT_WINOGRAD16_ROW(8) PFRT_WINOGRAD16_ROW(9) PFRT_WINOGRAD16_ROW(10) PFRT_WINOGRAD16_ROW(11)
  }
#undef PFRT_WINOGRAD16_ROW
#define PFRT_WINOGRAD16_STORE(r)                                                         \
  if constexpr (ROWS > r) {                                                              \
    if (add) c##r##a = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc), c##r##a);             \
    _mm512_storeu_ps(c + r * ldc, c##r##a);                                              \
    if constexpr (COLS > 1) {                                                            \
      if (add) c##r##b = _mm512_add_ps(_mm512_loadu_ps(c + r * ldc + 16), c##r##b);      \
      _mm512_storeu_ps(c + r * ldc + 16, c##r##b);                                       \
    }                                                                                    \
  }
  PFRT_WINOGRAD16_STORE(0) PFRT_WINOGRAD16_STORE(1) PFRT_WINOGRAD16_STORE(2) PFRT_WINOGRAD16_STORE(3)
  PFRT_WINOGRAD16_STORE(4) PFRT_WINOGRAD16_STORE(5) PFRT_WINOGRAD16_STORE(6) PFRT_WINOGRAD16_STORE(7)
  PFRT_WINOGRAD16_STORE(8) PFRT_WINOGRAD16_STORE(9) PFRT_WINOGRAD16_STORE(10) PFRT_WINOGRAD16_STORE(11)
#undef PFRT_WINOGRAD16_STORE
}

// One position's product for COLS blocks of 16 columns, in chunks of at most 12 rows of equal
// size (16 tiles: 8 + 8, not 12 + 4, whose 4-row tail reads B for a third of the FMAs), each
// chunk's k in blocks of kSumBlock.
template <int COLS>
void multiply_column_blocks16(const float* a, int64_t rows, int64_t k_size, const float* b, int64_t b_next, float* c,
                              int64_t ldc) {
  constexpr int kRows = 12;
  const int64_t chunks = (rows + kRows - 1) / kRows;
  for (int64_t i = 0, r = 0; i < chunks; ++i) {
    const int64_t count = (rows - r) / (chunks - i);  // the rest shared evenly
    float* cr = c + r * ldc;
    for (int64_t k0 = 0; k0 < k_size; k0 += kSumBlock) {
      const int64_t kb = std::min(kSumBlock, k_size - k0);
      const float* ar = a + r * k_size + k0;
      const float* bk = b + k0 * 16;
      const bool add = k0 > 0;
      switch (count) {
#define PFRT_WINOGRAD16_CHUNK(n) \
        case n: multiply_rows16<n, COLS>(ar, k_size, bk, b_next, kb, cr, ldc, add); break;
        PFRT_WINOGRAD16_CHUNK(1) PFRT_WINOGRAD16_CHUNK(2) PFRT_WINOGRAD16_CHUNK(3) PFRT_WINOGRAD16_CHUNK(4)
        PFRT_WINOGRAD16_CHUNK(5) PFRT_WINOGRAD16_CHUNK(6) PFRT_WINOGRAD16_CHUNK(7) PFRT_WINOGRAD16_CHUNK(8)
        PFRT_WINOGRAD16_CHUNK(9) PFRT_WINOGRAD16_CHUNK(10) PFRT_WINOGRAD16_CHUNK(11) PFRT_WINOGRAD16_CHUNK(12)
#undef PFRT_WINOGRAD16_CHUNK
        default: break;
      }
    }
    r += count;
  }
}

}  // namespace

namespace {
std::atomic<uint64_t> g_runs8{0}, g_runs16{0};
}  // namespace

uint64_t winograd_conv_runs(int block) {
  return (block == 16 ? g_runs16 : g_runs8).load(std::memory_order_relaxed);
}

bool WinogradConv::cpu_supported(int block) {
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return block == 16 ? avx512 : block == 8 && avx2;
}

int64_t WinogradConv::default_chunk_bytes() {
  static const int64_t bytes = [] {
    const char* v = std::getenv("PFRT_WINOGRAD16_CHUNK_KB");
    return (v ? std::max<int64_t>(1, std::atol(v)) : int64_t{1024}) * 1024;
  }();
  return bytes;
}

bool WinogradConv::suits(int64_t cin, int64_t cout, const Geometry& g, int block) {
  // Below ~16 tiles per image the 36 products are too thin to pay for reading the transformed
  // weights (4x the direct ones): ResNet-50's 7x7 stage stays direct.
  int64_t tiles = g.n * ((g.out_h + kOut - 1) / kOut) * ((g.out_w + kOut - 1) / kOut);
  return (block == 8 || block == 16) && cin % block == 0 && cout % block == 0 && tiles >= 16;
}

WinogradConv::WinogradConv(const Tensor& weights, const Tensor& bias, bool relu, DType storage, int block)
    : cin_(weights.dim(1)), cout_(weights.dim(0)), cout_pad_((cout_ + 15) / 16 * 16), relu_(relu), block_(block) {
  // U = G g G^T per (cout, cin), in double so the transform adds no rounding of its own.
  const auto& G = kWeightTransform;
  const float* w = weights.data<float>();
  // Half storage transforms into a transient mapping (half_weights.h: MappedFloats), so the
  // f32 form does not stay in the heap once kept half.
  const size_t count = static_cast<size_t>(kPositions * cin_ * cout_pad_);
  std::unique_ptr<MappedFloats> transient;
  float* u = nullptr;
  if (is_half(storage)) {
    transient = std::make_unique<MappedFloats>(count);  // zero-filled pages
    u = transient->data();
  } else {
    u_.assign(count, 0.f);  // padded columns stay 0
    u = u_.data();
  }
  for (int64_t co = 0; co < cout_; ++co) {
    for (int64_t ci = 0; ci < cin_; ++ci) {
      const float* g = w + (co * cin_ + ci) * 9;
      double gg[kTile][3];  // G g
      for (int i = 0; i < kTile; ++i) {
        for (int k = 0; k < 3; ++k) gg[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
      }
      for (int i = 0; i < kTile; ++i) {
        for (int j = 0; j < kTile; ++j) {
          double uu = gg[i][0] * G[j][0] + gg[i][1] * G[j][1] + gg[i][2] * G[j][2];
          size_t at = static_cast<size_t>((((i * kTile + j) * (cout_pad_ / 16) + co / 16) * cin_ + ci) * 16 + co % 16);
          u[at] = static_cast<float>(uu);
        }
      }
    }
  }
  bias_.assign(static_cast<size_t>(cout_), 0.f);
  if (bias.defined()) bias_.assign(bias.data<float>(), bias.data<float>() + cout_);
  u_data_ = u;
  if (is_half(storage)) keep_half(storage);
}

void WinogradConv::keep_half(DType) {
  // Scaled fp16 whatever the weights' half type (half_weights.h: transformed_scale).
  size_t n = static_cast<size_t>(kPositions * cin_ * cout_pad_);
  u_half_.resize(n);
  u_scale_ = transformed_scale(u_data_, static_cast<int64_t>(n));
  float_to_scaled_f16(u_data_, u_half_.data(), static_cast<int64_t>(n), u_scale_);
  storage_ = DType::kFloat16;
  u_data_ = nullptr;
  std::vector<float>().swap(u_);
  packed_ = Tensor();
}

std::shared_ptr<const WinogradConv> WinogradConv::from_packed(const Tensor& packed, int64_t cin, int64_t cout,
                                                              const Tensor& bias, bool relu, DType storage,
                                                              int block) {
  int64_t cout_pad = (cout + 15) / 16 * 16;
  if (!packed.raw_data() || packed.nbytes() != static_cast<size_t>(kPositions * cin * cout_pad) * sizeof(float)) {
    return nullptr;
  }
  std::shared_ptr<WinogradConv> w(new WinogradConv());
  w->cin_ = cin;
  w->cout_ = cout;
  w->cout_pad_ = cout_pad;
  w->relu_ = relu;
  w->block_ = block;
  w->packed_ = packed;
  w->u_data_ = static_cast<const float*>(packed.raw_data());
  w->bias_.assign(static_cast<size_t>(cout), 0.f);
  if (bias.defined()) w->bias_.assign(bias.data<float>(), bias.data<float>() + cout);
  if (is_half(storage)) w->keep_half(storage);
  return w;
}

Tensor WinogradConv::packed_bytes() const {
  size_t n = static_cast<size_t>(kPositions * cin_ * cout_pad_) * sizeof(float);
  Tensor out(DType::kUInt8, {static_cast<int64_t>(n)});
  if (u_data_) {
    std::memcpy(out.raw_data(), u_data_, n);
  } else {
    half_to_float(u_half_.data(), static_cast<float*>(out.raw_data()), static_cast<int64_t>(n / sizeof(float)), storage_,
                  1.f / u_scale_);
  }
  return out;
}

void WinogradConv::multiply8(const float* v, float* m, int64_t tiles) const {
  const int64_t v_stride = tiles * cin_, m_stride = tiles * cout_pad_;
  const int64_t col_blocks = cout_pad_ / 16;
#pragma omp parallel for collapse(2) schedule(static)
  for (int p = 0; p < kPositions; ++p) {
    for (int64_t nb = 0; nb < col_blocks; ++nb) {
      const int64_t at = (p * col_blocks + nb) * cin_ * 16;
      const float* u = u_data_ ? u_data_ + at : nullptr;
      if (!u) {  // half storage: this block in f32 in the worker's scratch
        float* block = weights_scratch(static_cast<size_t>(cin_ * 16));
        half_to_float(u_half_.data() + at, block, cin_ * 16, storage_, 1.f / u_scale_);
        u = block;
      }
      multiply_column_block(v + p * v_stride, tiles, cin_, u, m + p * m_stride + nb * 16, cout_pad_);
    }
  }
}

void WinogradConv::run16(const float* src, float* dst, const Geometry& g) const {
  // Tiles in chunks, each chunk transformed, multiplied and transformed back by one thread in
  // its own V and M (at most kChunkBytes, in its L2) instead of whole-layer V and M passed
  // between three parallel loops: the layer's V and M (3.6 MB at 56x56x64) made a round trip
  // to L3 between the phases, and the threads meet no barrier between them.
  const int64_t tiles_h = (g.out_h + kOut - 1) / kOut, tiles_w = (g.out_w + kOut - 1) / kOut;
  const int64_t per_image = tiles_h * tiles_w, tiles = g.n * per_image;
  const int64_t in_blocks = cin_ / 16, out_blocks = cout_ / 16;
  const int64_t col_blocks = cout_pad_ / 16, pairs = (col_blocks + 1) / 2;
  const int64_t b_next = cin_ * 16;  // the next block of 16 columns in the packing
  const int64_t per_tile = kPositions * (cin_ + cout_pad_) * static_cast<int64_t>(sizeof(float));
  const int64_t threads = omp_get_max_threads();
  // Each chunk reads all the transformed weights U once: chunks smaller than U would read U
  // more often than they save on V and M (28x28x128: U 2.4 MB, chunks of 1 MB 1.2x the time of
  // one chunk per thread; 56x56x64: U 0.6 MB, chunks of 1 MB 0.8x).
  const int64_t u_bytes = kPositions * cin_ * cout_pad_ * static_cast<int64_t>(sizeof(float));
  const int64_t budget = std::max(chunk_bytes_, u_bytes);
  // Whole rows of the 12-row kernel per chunk, and a multiple of the team's chunks.
  int64_t chunk = std::max<int64_t>(12, budget / per_tile / 12 * 12);
  int64_t chunks = (tiles + chunk - 1) / chunk;
  chunks = std::min(tiles, (chunks + threads - 1) / threads * threads);
  const int64_t max_rows = (tiles + chunks - 1) / chunks;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t t0 = c * tiles / chunks, rows = (c + 1) * tiles / chunks - t0;
    const int64_t v_stride = rows * cin_, m_stride = rows * cout_pad_;  // between positions
    float* v = thread_scratch<WinogradScratchTag>(static_cast<size_t>(kPositions * max_rows * (cin_ + cout_pad_)));
    float* m = v + kPositions * v_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r, n = t / per_image, ty = t % per_image / tiles_w, tx = t % tiles_w;
      for (int64_t cb = 0; cb < in_blocks; ++cb) {
        const float* plane = src + (n * in_blocks + cb) * g.h * g.w * 16;
        transform_input_tile16(plane, g.h, g.w, ty * kOut - g.pad_top, tx * kOut - g.pad_left, v + r * cin_ + cb * 16,
                               v_stride);
      }
    }
    for (int p = 0; p < kPositions; ++p) {
      for (int64_t q = 0; q < pairs; ++q) {
        const int64_t nb = q * 2, cols = std::min<int64_t>(2, col_blocks - nb);
        const int64_t at = (p * col_blocks + nb) * cin_ * 16;
        const float* u = u_data_ ? u_data_ + at : nullptr;
        if (!u) {  // half storage: these blocks in f32 in the worker's scratch
          float* block = weights_scratch(static_cast<size_t>(cin_ * 16 * cols));
          half_to_float(u_half_.data() + at, block, cin_ * 16 * cols, storage_, 1.f / u_scale_);
          u = block;
        }
        float* out = m + p * m_stride + nb * 16;
        if (cols == 2) {
          multiply_column_blocks16<2>(v + p * v_stride, rows, cin_, u, b_next, out, cout_pad_);
        } else {
          multiply_column_blocks16<1>(v + p * v_stride, rows, cin_, u, b_next, out, cout_pad_);
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r, n = t / per_image, ty = t % per_image / tiles_w, tx = t % tiles_w;
      for (int64_t ob = 0; ob < out_blocks; ++ob) {
        float* plane = dst + (n * out_blocks + ob) * g.out_h * g.out_w * 16;
        transform_output_tile16(m + r * cout_pad_ + ob * 16, m_stride, bias_.data() + ob * 16, relu_, plane, g.out_h,
                                g.out_w, ty * kOut, tx * kOut);
      }
    }
  }
}

void WinogradConv::run(const float* src, float* dst, const Geometry& g) const {
  (block_ == 16 ? g_runs16 : g_runs8).fetch_add(1, std::memory_order_relaxed);
  if (block_ == 16) {
    run16(src, dst, g);
    return;
  }
  const int64_t tiles_h = (g.out_h + kOut - 1) / kOut, tiles_w = (g.out_w + kOut - 1) / kOut;
  const int64_t per_image = tiles_h * tiles_w, tiles = g.n * per_image;
  const int64_t in_blocks = cin_ / 8, out_blocks = cout_ / 8;
  const int64_t v_stride = tiles * cin_, m_stride = tiles * cout_pad_;  // between positions
  float* v = thread_scratch<WinogradScratchTag>(static_cast<size_t>(kPositions * (v_stride + m_stride)));
  float* m = v + kPositions * v_stride;

#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t cb = 0; cb < in_blocks; ++cb) {
      int64_t n = t / per_image, ty = t % per_image / tiles_w, tx = t % tiles_w;
      const float* plane = src + (n * in_blocks + cb) * g.h * g.w * 8;
      transform_input_tile(plane, g.h, g.w, ty * kOut - g.pad_top, tx * kOut - g.pad_left, v + t * cin_ + cb * 8,
                           v_stride);
    }
  }
  multiply8(v, m, tiles);
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t ob = 0; ob < out_blocks; ++ob) {
      int64_t n = t / per_image, ty = t % per_image / tiles_w, tx = t % tiles_w;
      float* plane = dst + (n * out_blocks + ob) * g.out_h * g.out_w * 8;
      transform_output_tile(m + t * cout_pad_ + ob * 8, m_stride, bias_.data() + ob * 8, relu_, plane, g.out_h, g.out_w,
                            ty * kOut, tx * kOut);
    }
  }
}

}  // namespace cpu
}  // namespace pyflame_rt
