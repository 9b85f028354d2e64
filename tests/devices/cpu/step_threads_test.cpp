// The team size each step of a run gets (devices/cpu/step_threads.h): a deterministic function
// of the op's kind and its input shapes.
#include "devices/cpu/step_threads.h"

#include <gtest/gtest.h>

namespace pyflame_rt {
namespace cpu {
namespace {

TEST(StepThreadsTest, KindsFollowTheOpType) {
  EXPECT_EQ(step_work_of("FusedConv"), StepWork::kConv);
  EXPECT_EQ(step_work_of("Conv"), StepWork::kConv);
  EXPECT_EQ(step_work_of("Gemm"), StepWork::kProduct);
  EXPECT_EQ(step_work_of("FusedMatMul"), StepWork::kProduct);
  EXPECT_EQ(step_work_of("GRU"), StepWork::kOwn);
  EXPECT_EQ(step_work_of("MultiHeadAttention"), StepWork::kOwn);
  EXPECT_EQ(step_work_of("Transpose"), StepWork::kElements);
  EXPECT_EQ(step_work_of("GlobalAveragePool"), StepWork::kElements);
}

TEST(StepThreadsTest, SqueezeExciteConvolutionRunsOnOneThread) {
  // EfficientNet-B0's SE reduction: 1152 -> 48 channels on a 1x1 tensor, 55k multiply-adds.
  Dims x{1, 1152, 1, 1}, w{48, 1152, 1, 1};
  EXPECT_EQ(step_threads(StepWork::kConv, {&x, &w}, 2), 1);
}

TEST(StepThreadsTest, ResNetConvolutionKeepsTheTeam) {
  Dims x{1, 512, 7, 7}, w{512, 512, 3, 3};  // 115M multiply-adds
  EXPECT_EQ(step_threads(StepWork::kConv, {&x, &w}, 2), 2);
  // A depthwise 3x3 on 96 channels at 112x112: 96 x 9 per position, 10.8M in all.
  Dims dx{1, 96, 112, 112}, dw{96, 1, 3, 3};
  EXPECT_EQ(step_threads(StepWork::kConv, {&dx, &dw}, 4), 4);
}

TEST(StepThreadsTest, ProductCountsRowsTimesTheOtherOperand) {
  Dims a{1, 1280}, b{1000, 1280};  // a classifier: 1.28M multiply-adds
  EXPECT_EQ(step_threads(StepWork::kProduct, {&a, &b}, 2), 2);
  Dims small_a{1, 64}, small_b{64, 64};
  EXPECT_EQ(step_threads(StepWork::kProduct, {&small_a, &small_b}, 2), 1);
  // The same small operand for 4096 rows is 16M.
  Dims rows{4096, 64};
  EXPECT_EQ(step_threads(StepWork::kProduct, {&rows, &small_b}, 2), 2);
}

TEST(StepThreadsTest, ElementsFollowTheLargestInput) {
  Dims small{50, 1, 64}, large{1, 1152, 14, 14}, scalar{1};
  EXPECT_EQ(step_threads(StepWork::kElements, {&small}, 2), 1);
  EXPECT_EQ(step_threads(StepWork::kElements, {&scalar, &large}, 2), 2) << "the first input is not the only one";
  EXPECT_EQ(step_threads(StepWork::kElements, {&large, &scalar}, 2), 2);
}

TEST(StepThreadsTest, UnknownShapesAndOwnTeamsKeepTheRunsThreads) {
  Dims small{4, 4};
  EXPECT_EQ(step_threads(StepWork::kOwn, {&small}, 2), 2);
  EXPECT_EQ(step_threads(StepWork::kElements, {nullptr}, 2), 2);
  EXPECT_EQ(step_threads(StepWork::kConv, {&small, nullptr}, 2), 2);
  EXPECT_EQ(step_threads(StepWork::kElements, {}, 2), 2);
  EXPECT_EQ(step_threads(StepWork::kElements, {&small}, 1), 1);
}

TEST(StepThreadsTest, BlockingWorkersRaiseBothLimitsFourTimes) {
  // audio_tdnn's attention values: 51200 floats, a Mul or ReduceSum of 5-10 us on one thread.
  Dims att{1, 256, 200};
  EXPECT_EQ(step_threads(StepWork::kElements, {&att}, 2, /*workers_block=*/false), 2);
  EXPECT_EQ(step_threads(StepWork::kElements, {&att}, 2, /*workers_block=*/true), 1);
  Dims large{1, 64, 64, 64};  // 2^18 floats: worth a woken worker too
  EXPECT_EQ(step_threads(StepWork::kElements, {&large}, 2, true), 2);
  // A 1x1 convolution of exactly 2^18 multiply-adds, then one of 2^22.
  Dims x{1, 32, 16, 16}, w{32, 32, 1, 1};
  EXPECT_EQ(step_threads(StepWork::kConv, {&x, &w}, 2, false), 2);
  EXPECT_EQ(step_threads(StepWork::kConv, {&x, &w}, 2, true), 1);
  Dims bx{1, 64, 32, 32}, bw{64, 64, 1, 1};
  EXPECT_EQ(step_threads(StepWork::kConv, {&bx, &bw}, 2, true), 2);
  EXPECT_EQ(step_threads(StepWork::kOwn, {&att}, 2, true), 2) << "a GRU or attention step sizes its own team";
}

TEST(StepThreadsTest, ContendedCoresSplitOnlyMillisecondsOfWork) {
  // ResNet-50's 3x3 convolution at 56x56x64 (115M multiply-adds) keeps the team; MobileNetV2's
  // largest pointwise one (112x112, 32 -> 96: 38M) and a 1x1 of 2^22 run on one thread.
  Dims rx{1, 64, 56, 56}, rw{64, 64, 3, 3};
  EXPECT_EQ(step_threads(StepWork::kConv, {&rx, &rw}, 2, false, /*contended=*/true), 2);
  Dims mx{1, 32, 112, 112}, mw{96, 32, 1, 1};
  EXPECT_EQ(step_threads(StepWork::kConv, {&mx, &mw}, 2, false, false), 2);
  EXPECT_EQ(step_threads(StepWork::kConv, {&mx, &mw}, 2, false, true), 1);
  Dims bx{1, 64, 32, 32}, bw{64, 64, 1, 1};
  EXPECT_EQ(step_threads(StepWork::kConv, {&bx, &bw}, 2, false, true), 1);
  // Elements: 2^23 floats (32 MB) keep the team, a 224x224x32 activation does not.
  Dims huge{1, 128, 256, 256}, act{1, 32, 224, 224};
  EXPECT_EQ(step_threads(StepWork::kElements, {&huge}, 2, false, true), 2);
  EXPECT_EQ(step_threads(StepWork::kElements, {&act}, 2, false, true), 1);
  // Own teams and unknown shapes: one thread, as the work cannot be told.
  EXPECT_EQ(step_threads(StepWork::kOwn, {&act}, 2, false, true), 1);
  EXPECT_EQ(step_threads(StepWork::kConv, {&act, nullptr}, 2, false, true), 1);
  EXPECT_EQ(step_threads(StepWork::kElements, {&act}, 1, false, true), 1);
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
