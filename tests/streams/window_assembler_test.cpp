#include "streams/window_assembler.h"

#include <gtest/gtest.h>

#include <numeric>

#include "streams/tensor_axis.h"

namespace pyflame_rt {
namespace {

// [1, n] samples start, start+1, ...
Tensor ramp(int64_t start, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), static_cast<float>(start));
  return Tensor::from_vector<float>({1, n}, v);
}

std::vector<float> values(const Tensor& t) { return {t.data<float>(), t.data<float>() + t.numel()}; }

TEST(TensorAxisTest, ConcatSliceAndPadAlongAnInnerAxis) {
  Tensor a = Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4});
  Tensor b = Tensor::from_vector<float>({2, 1}, {5, 6});
  Tensor c = concat_along({a, b}, 1);
  ASSERT_EQ(c.dims(), (Dims{2, 3}));
  EXPECT_EQ(values(c), (std::vector<float>{1, 2, 5, 3, 4, 6}));
  EXPECT_EQ(values(slice_along(c, 1, 1, 2)), (std::vector<float>{2, 5, 4, 6}));
  Tensor p = pad_along(b, 1, 3);
  EXPECT_EQ(values(p), (std::vector<float>{5, 0, 0, 6, 0, 0}));
}

TEST(WindowAssemblerTest, WindowsOverlapAndChunksOfAnySizeJoin) {
  WindowAssembler w(4, 1, 1);  // hop 3
  EXPECT_TRUE(w.push(ramp(0, 3)).empty());  // smaller than a window: buffered
  auto first = w.push(ramp(3, 7));           // 10 samples: windows at 0 and 3, 6 needs 10 -> yes
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(values(first[0].samples), (std::vector<float>{0, 1, 2, 3}));
  EXPECT_EQ(first[0].repeated_front, 0);
  EXPECT_EQ(values(first[1].samples), (std::vector<float>{3, 4, 5, 6}));
  EXPECT_EQ(first[1].repeated_front, 1);
  EXPECT_EQ(values(first[2].samples), (std::vector<float>{6, 7, 8, 9}));
  EXPECT_EQ(w.buffered(), 1);  // sample 9 is the next window's overlap
  auto tail = w.flush(true);
  EXPECT_TRUE(tail.empty());  // only the overlap is left: nothing new to run
  EXPECT_EQ(w.buffered(), 0);
}

TEST(WindowAssemblerTest, FlushPadsTheLastWindow) {
  WindowAssembler w(4, 1, 1);
  ASSERT_EQ(w.push(ramp(0, 6)).size(), 1u);  // [0..3], buffer keeps 3,4,5
  auto tail = w.flush(true);
  ASSERT_EQ(tail.size(), 1u);
  EXPECT_EQ(values(tail[0].samples), (std::vector<float>{3, 4, 5, 0}));
  EXPECT_EQ(tail[0].repeated_front, 1);
  EXPECT_EQ(tail[0].padded_back, 1);
}

TEST(WindowAssemblerTest, PassThroughPrependsTheOverlapAsContext) {
  WindowAssembler w(0, 2, 1);
  auto a = w.push(ramp(0, 3));
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].repeated_front, 0);
  auto b = w.push(ramp(3, 5));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(values(b[0].samples), (std::vector<float>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(b[0].repeated_front, 2);
  w.reset();
  EXPECT_EQ(w.push(ramp(0, 1))[0].repeated_front, 0);
}

}  // namespace
}  // namespace pyflame_rt
