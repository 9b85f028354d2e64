// The small products of a recurrent step: a few rows (the batch) times a constant matrix that
// stays in cache between steps. The matrix is packed once into column panels, so that each
// step streams it front to back; a block of output columns stays in registers over all of K.
// ref_gemm, used before, re-read and re-wrote each output row for every k, and the weights were
// transposed on every run: a batch-first GRU (H 128, 50 steps, batch 1) took 438-483 us, now
// 194-200 us (oneDNN's GRU primitive, for the time-major one-direction case: 155 us). Rows are
// taken four at a time, each panel once for all of them (stop 16: a batch of 4 re-read the
// matrix four times, 10.2 us a step of an H 128 LSTM, now 3.5 us; batch 1: 2.6 us).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace pyflame_rt {
namespace cpu {

// Storage aligned to a cache line: a panel row's vector loads then never straddle two lines.
// From malloc, a large array sits 16 bytes past a page (its mmap chunk header): every 64-byte
// load was split, and an H 128 LSTM took 0.20 ms instead of 0.12.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}  // NOLINT: rebinding, as allocators do
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};
using Panels = std::vector<float, CacheLineAllocator<float>>;

// b [K, cols] (row stride ldb) as column panels for rows_times_panels: panel p holds columns
// [64p, min(64p + 64, cols)) as K rows of its width, one panel after the other.
Panels pack_column_panels(const float* b, int64_t K, int64_t cols, int64_t ldb);

// The same panels for the transpose of bt [cols, K] (row stride ldbt), without a transposed copy
// first: a recurrent op's W [G*H, in] and R [G*H, H] multiply as Wᵀ and Rᵀ. Packing run-time
// weights through a transposed copy took ~0.3 ms a run for an H 128 LSTM (its strided writes).
Panels pack_transposed_panels(const float* bt, int64_t cols, int64_t K, int64_t ldbt);

// out[n, j] = sum_k a[n, k] * b[k, j] for n < rows, j < cols, b packed by pack_column_panels.
// Row strides: a lda, out ldo. Picks its AVX-512, AVX2+FMA or plain variant by the CPU.
void rows_times_panels(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels, int64_t cols,
                       float* out, int64_t ldo);

// The variants this CPU can run, by name ("avx512", "avx2", "plain"): the tests run each.
using RowsTimesPanelsFn = void (*)(const float* a, int64_t rows, int64_t K, int64_t lda, const float* panels,
                                   int64_t cols, float* out, int64_t ldo);
std::vector<std::pair<std::string, RowsTimesPanelsFn>> rows_times_panels_variants();

}  // namespace cpu
}  // namespace pyflame_rt
