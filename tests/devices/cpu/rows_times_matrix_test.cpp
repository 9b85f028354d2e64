// rows_times_panels against a plain triple loop, on shapes that exercise each path: whole
// 64-column panels, a last panel with 16-column blocks and single columns, odd K (the loop
// takes two k at a time), several rows with strides wider than the rows, blocks of four rows and
// the one to three left over.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "devices/cpu/rows_times_matrix.h"

namespace pyflame_rt {
namespace cpu {
namespace {

TEST(RowsTimesPanelsTest, MatchesThePlainProduct) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  struct Shape { int64_t rows, K, cols; };
  for (Shape s : {Shape{1, 1, 1}, Shape{1, 128, 384}, Shape{3, 7, 18}, Shape{2, 33, 210}, Shape{1, 129, 64},
                  Shape{4, 64, 79}, Shape{1, 2, 16}, Shape{9, 20, 150}, Shape{6, 5, 64}, Shape{17, 33, 40}}) {
    const int64_t lda = s.K + 3, ldb = s.cols + 5, ldo = s.cols + 2;
    std::vector<float> a(static_cast<size_t>(s.rows * lda)), b(static_cast<size_t>(s.K * ldb));
    for (float& v : a) v = dist(gen);
    for (float& v : b) v = dist(gen);
    const float kUntouched = 1234.5f;
    std::vector<float> out(static_cast<size_t>(s.rows * ldo), kUntouched);
    Panels panels = pack_column_panels(b.data(), s.K, s.cols, ldb);
    ASSERT_EQ(panels.size(), static_cast<size_t>(s.K * s.cols));
    // The same panels packed from bᵀ (row stride K + 1).
    std::vector<float> bt(static_cast<size_t>(s.cols * (s.K + 1)));
    for (int64_t k = 0; k < s.K; ++k) {
      for (int64_t j = 0; j < s.cols; ++j) bt[static_cast<size_t>(j * (s.K + 1) + k)] = b[static_cast<size_t>(k * ldb + j)];
    }
    EXPECT_EQ(pack_transposed_panels(bt.data(), s.cols, s.K, s.K + 1), panels);
    // The dispatcher, then every variant this CPU runs (the dispatcher sends one row and
    // several to different variants).
    std::vector<std::pair<std::string, RowsTimesPanelsFn>> variants = {{"dispatched", rows_times_panels}};
    for (const auto& v : rows_times_panels_variants()) variants.push_back(v);
    for (const auto& [name, fn] : variants) {
      std::fill(out.begin(), out.end(), kUntouched);
      fn(a.data(), s.rows, s.K, lda, panels.data(), s.cols, out.data(), ldo);
      for (int64_t n = 0; n < s.rows; ++n) {
        for (int64_t j = 0; j < s.cols; ++j) {
          double want = 0;
          for (int64_t k = 0; k < s.K; ++k) want += double(a[n * lda + k]) * b[k * ldb + j];
          ASSERT_NEAR(out[n * ldo + j], want, 1e-4 * (1 + std::abs(want)))
              << name << ": rows " << s.rows << " K " << s.K << " cols " << s.cols << " at [" << n << ", " << j << "]";
        }
        // The stride's padding is not written.
        for (int64_t j = s.cols; j < ldo; ++j) EXPECT_EQ(out[n * ldo + j], kUntouched) << name;
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
