// The vectorisable exp/sigmoid/tanh against libm over the range the gates see.
#include "devices/cpu/vector_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace pyflame_rt {
namespace cpu {
namespace {

std::vector<float> grid(float lo, float hi, int n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n - 1);
  v.push_back(0.0f);
  v.push_back(-0.0f);
  v.push_back(1e-8f);
  v.push_back(-3e-5f);
  return v;
}

TEST(VectorMathTest, ExpMatchesLibmToAFewUlps) {
  std::vector<float> x = grid(-87.f, 88.f, 100003), y = x;
  exp_inplace(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    double ref = std::exp(static_cast<double>(x[i]));
    EXPECT_NEAR(y[i], ref, 4e-7 * ref) << "x=" << x[i];
  }
}

TEST(VectorMathTest, SigmoidAndTanhMatchLibm) {
  std::vector<float> x = grid(-30.f, 30.f, 200001), s = x, t = x;
  sigmoid_inplace(s.data(), static_cast<int64_t>(s.size()));
  tanh_inplace(t.data(), static_cast<int64_t>(t.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    double xs = x[i];
    double sr = 1.0 / (1.0 + std::exp(-xs)), tr = std::tanh(xs);
    EXPECT_NEAR(s[i], sr, 3e-7 * sr + 1e-30) << "x=" << x[i];
    // Relative near 0 (so tiny gate values stay tiny), absolute 2 ulps of 1 elsewhere.
    EXPECT_NEAR(t[i], tr, std::max(3e-7 * std::fabs(tr), 1.2e-7 * std::min(1.0, 8 * std::fabs(tr)))) << "x=" << x[i];
  }
}

// Each vector kernel this host has, not only the one silu_inplace picks here.
TEST(VectorMathTest, SiluKernelsMatchLibm) {
  std::vector<std::pair<const char*, void (*)(float*, int64_t)>> kernels;
  if (silu_avx512_supported()) kernels.emplace_back("avx512", silu_avx512);
  if (silu_avx2_supported()) kernels.emplace_back("avx2", silu_avx2);
  if (kernels.empty()) GTEST_SKIP() << "no AVX2 on this host";
  const std::vector<float> x = grid(-90.f, 90.f, 20011);
  for (const auto& [name, kernel] : kernels) {
    for (int64_t n : {int64_t{1}, int64_t{15}, int64_t{17}, static_cast<int64_t>(x.size())}) {
      std::vector<float> y(x.begin(), x.begin() + n);
      kernel(y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        double xs = x[static_cast<size_t>(i)], ref = xs / (1.0 + std::exp(-xs));
        EXPECT_NEAR(y[static_cast<size_t>(i)], ref, 1e-6 * std::fabs(ref) + 1e-30) << name << " x=" << xs << " n=" << n;
      }
    }
    std::vector<float> special = {-1e30f, 1e30f, -INFINITY, INFINITY, NAN};
    kernel(special.data(), 5);
    EXPECT_LE(std::fabs(special[0]), 1e-30f) << name;
    EXPECT_NEAR(special[1], 1e30f, 1e24f) << name;
    EXPECT_LE(std::fabs(special[2]), 1e-30f) << name;
    EXPECT_EQ(special[3], INFINITY) << name;
    EXPECT_TRUE(std::isnan(special[4])) << name;
  }
}

TEST(VectorMathTest, SiluMatchesLibm) {
  std::vector<float> x = grid(-90.f, 90.f, 200003), y = x;
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{13}}) {  // tails shorter than a vector
    std::vector<float> t(x.begin() + 100000, x.begin() + 100000 + n);
    silu_inplace(t.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      double xs = x[static_cast<size_t>(100000 + i)], ref = xs / (1.0 + std::exp(-xs));
      EXPECT_NEAR(t[static_cast<size_t>(i)], ref, 1e-6 * std::fabs(ref) + 1e-30) << "x=" << xs << " n=" << n;
    }
  }
  silu_inplace_parallel(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    double xs = x[i], ref = xs / (1.0 + std::exp(-xs));
    EXPECT_NEAR(y[i], ref, 1e-6 * std::fabs(ref) + 1e-30) << "x=" << x[i];
  }
  std::vector<float> extremes = {-1e30f, 1e30f, -INFINITY, INFINITY};
  silu_inplace(extremes.data(), 4);
  EXPECT_NEAR(extremes[1], 1e30f, 1e24f);
  EXPECT_EQ(extremes[3], INFINITY);
  EXPECT_LE(std::fabs(extremes[0]), 1e-30f);
  EXPECT_LE(std::fabs(extremes[2]), 1e-30f);
}

TEST(VectorMathTest, ErfMatchesLibm) {
  std::vector<float> x = grid(-12.f, 12.f, 200001);
  x.push_back(INFINITY);
  x.push_back(-INFINITY);
  std::vector<float> y = x;
  erf_inplace(y.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    double ref = std::erf(static_cast<double>(x[i]));
    // Relative near 0 (tiny inputs stay tiny), absolute 3e-7 elsewhere.
    double tol = std::fabs(x[i]) < 0.5f ? 1e-6 * std::fabs(ref) + 1e-30 : 3e-7;
    EXPECT_NEAR(y[i], ref, tol) << "x=" << x[i];
  }
}

TEST(VectorMathTest, ExtremesSaturateWithoutNaN) {
  std::vector<float> x = {-1e30f, -200.f, 200.f, 1e30f};
  std::vector<float> s = x, t = x;
  sigmoid_inplace(s.data(), 4);
  tanh_inplace(t.data(), 4);
  EXPECT_LT(s[0], 1e-37f);
  EXPECT_EQ(s[3], 1.0f);
  EXPECT_NEAR(t[0], -1.0f, 6e-8f);
  EXPECT_NEAR(t[3], 1.0f, 6e-8f);
  for (float v : s) EXPECT_FALSE(std::isnan(v));
  for (float v : t) EXPECT_FALSE(std::isnan(v));
}

// NaN in, NaN out, through every function built on exp (exp's integer part of a NaN was an
// undefined float-to-int conversion: UBSan, kernel_run run 21).
TEST(VectorMathTest, NaNPropagates) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (void (*f)(float*, int64_t) : {exp_inplace, sigmoid_inplace, tanh_inplace, erf_inplace}) {
    std::vector<float> x = {nan, 1.f, nan};
    f(x.data(), 3);
    EXPECT_TRUE(std::isnan(x[0]));
    EXPECT_FALSE(std::isnan(x[1]));
    EXPECT_TRUE(std::isnan(x[2]));
  }
}

}  // namespace
}  // namespace cpu
}  // namespace pyflame_rt
