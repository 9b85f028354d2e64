// The batched 2-D transpose (devices/cpu/transpose_2d.h): which permutations it recognises, and
// every element in place for sizes on and off the 8 x 8 blocks, serial and parallel.
#include "devices/cpu/transpose_2d.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <vector>

namespace pyflame_rt {
namespace cpu {
namespace {

struct Sizes {
  int64_t batch, rows, cols;
  bool operator==(const Sizes& o) const { return batch == o.batch && rows == o.rows && cols == o.cols; }
};

bool classify(const Dims& dims, const std::vector<int64_t>& perm, Sizes* s) {
  return as_batched_transpose(dims, perm, &s->batch, &s->rows, &s->cols);
}

TEST(Transpose2dTest, RecognisesTwoGroupSwapsAndOnlyThem) {
  Sizes s{};
  ASSERT_TRUE(classify({1, 96, 56, 56}, {0, 2, 3, 1}, &s));  // NCHW -> NHWC
  EXPECT_TRUE((s == Sizes{1, 96, 3136}));
  ASSERT_TRUE(classify({1, 56, 56, 96}, {0, 3, 1, 2}, &s));  // NHWC -> NCHW
  EXPECT_TRUE((s == Sizes{1, 3136, 96}));
  ASSERT_TRUE(classify({2, 56, 56, 96}, {0, 3, 1, 2}, &s));  // a batch
  EXPECT_TRUE((s == Sizes{2, 3136, 96}));
  ASSERT_TRUE(classify({7, 5}, {1, 0}, &s));
  EXPECT_TRUE((s == Sizes{1, 7, 5}));
  ASSERT_TRUE(classify({3, 1, 4, 1, 5}, {0, 4, 2, 1, 3}, &s));  // unit axes anywhere
  EXPECT_TRUE((s == Sizes{3, 4, 5}));
  ASSERT_TRUE(classify({4, 6, 2, 3}, {2, 3, 0, 1}, &s));  // two axes each side
  EXPECT_TRUE((s == Sizes{1, 24, 6}));
  EXPECT_FALSE(classify({2, 3, 4, 5}, {2, 0, 3, 1}, &s));  // four groups
  EXPECT_FALSE(classify({2, 3, 4}, {1, 0, 2}, &s));        // a swap with an inner axis after it
  EXPECT_FALSE(classify({2, 3, 4}, {0, 1, 2}, &s));        // the identity: a copy
  EXPECT_FALSE(classify({2, 3, 4}, {2, 1, 0}, &s));        // three groups reversed
}

TEST(Transpose2dTest, PermutationsMovingOnlyUnitAxesKeepTheElementOrder) {
  EXPECT_TRUE(keeps_element_order({1, 50, 64}, {1, 0, 2}));
  EXPECT_TRUE(keeps_element_order({3, 1, 1, 5}, {0, 2, 3, 1}));
  EXPECT_TRUE(keeps_element_order({2, 3}, {0, 1}));
  EXPECT_FALSE(keeps_element_order({2, 3}, {1, 0}));
  EXPECT_FALSE(keeps_element_order({2, 1, 3}, {2, 1, 0}));
}

TEST(Transpose2dTest, EveryElementLandsInPlace) {
  const std::vector<Sizes> cases = {{1, 8, 8}, {1, 1, 37}, {1, 37, 1}, {3, 9, 17}, {2, 96, 70}, {1, 300, 64}, {1, 5, 3}};
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    for (const Sizes& c : cases) {
      const int64_t n = c.batch * c.rows * c.cols;
      std::vector<int32_t> src(static_cast<size_t>(n)), dst(static_cast<size_t>(n), -1);
      for (int64_t i = 0; i < n; ++i) src[static_cast<size_t>(i)] = static_cast<int32_t>(i);
      transpose_2d_4byte(src.data(), dst.data(), c.batch, c.rows, c.cols);
      for (int64_t b = 0; b < c.batch; ++b) {
        for (int64_t r = 0; r < c.rows; ++r) {
          for (int64_t k = 0; k < c.cols; ++k) {
            const int64_t from = (b * c.rows + r) * c.cols + k, to = (b * c.cols + k) * c.rows + r;
            ASSERT_EQ(dst[static_cast<size_t>(to)], src[static_cast<size_t>(from)])
                << c.batch << "x" << c.rows << "x" << c.cols << " at " << b << "," << r << "," << k << ", " << threads
                << " thread(s)";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
