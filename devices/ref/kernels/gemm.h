// A plain, cache-friendly GEMM for the reference kernels (MatMul, Gemm, Conv via im2col).
// C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, row-major with leading dimensions.
// The inner loop runs over contiguous N so the compiler vectorises it; K is blocked to keep
// a panel of B in cache. Not the fast path (that is devices/cpu), just not needlessly slow.
// M, N and K are a model's (a MatMul of 10^11 multiply-adds fits inputs of a few MB): the run's
// deadline and terminate flag are read per row of each K block (InterruptPoll), and the
// GEMM returns the status that stopped it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "devices/run_interrupt.h"
#include "graph/status.h"

namespace pyflame_rt {

// y += a * x over n elements; restrict lets the compiler vectorise without alias checks.
template <typename T>
inline void axpy(int64_t n, T a, const T* __restrict x, T* __restrict y) {
  for (int64_t j = 0; j < n; ++j) y[j] += a * x[j];
}
// The float version is compiled once per ISA (AVX-512, AVX2, baseline) and picked at load
// time: the innermost loop of every float GEMM here.
void axpy_f32(int64_t n, float a, const float* x, float* y);
template <>
inline void axpy<float>(int64_t n, float a, const float* x, float* y) { axpy_f32(n, a, x, y); }

template <typename T>
Status ref_gemm(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, bool trans_a,
                const T* B, int64_t ldb, bool trans_b, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));
    else if (beta != T(1)) for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
  // Materialise op(B) row-major [K,N] when transposed so the inner loop stays contiguous.
  std::vector<T> bt;
  if (trans_b) {
    bt.resize(static_cast<size_t>(K * N));
    for (int64_t k = 0; k < K; ++k) for (int64_t j = 0; j < N; ++j) bt[static_cast<size_t>(k * N + j)] = B[j * ldb + k];
    B = bt.data();
    ldb = N;
  }
  constexpr int64_t kBlockK = 256;
  InterruptPoll poll;
  for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
    int64_t k1 = std::min(K, k0 + kBlockK);
    for (int64_t i = 0; i < M; ++i) {
      RETURN_IF_ERROR(poll.tick((N + 1) * (k1 - k0)));  // + 1: the k loop runs when N is 0 too
      T* c = C + i * ldc;
      for (int64_t k = k0; k < k1; ++k) {
        T a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
        if (a == T(0)) continue;
        axpy(N, a, B + k * ldb, c);
      }
    }
  }
  return Status::OK();
}

}  // namespace pyflame_rt
