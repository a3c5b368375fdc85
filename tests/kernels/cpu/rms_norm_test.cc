// Tests of kernels/cpu/rms_norm.cc against a naive double-precision reference:
// y = x / sqrt(mean(x²) + eps) · w (Gemma 4: the weight as-is, not 1 + w).
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

constexpr double kRelTol = 1e-5;

std::vector<float> RandomVector(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// `one_plus` selects the Gemma 3 style (1 + w) weight, used only to prove the kernel is not it.
std::vector<double> NaiveRmsNorm(const std::vector<float>& x, const float* w, int64_t rows,
                                 int64_t n, double eps, bool one_plus = false) {
  std::vector<double> y(rows * n);
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[r * n + i]) * x[r * n + i];
    const double rms = std::sqrt(ss / static_cast<double>(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      double g = 1.0;
      if (w != nullptr) g = one_plus ? 1.0 + w[i] : w[i];
      y[r * n + i] = x[r * n + i] / rms * g;
    }
  }
  return y;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], kRelTol * std::abs(want[i]) + 1e-7) << "index " << i;
  }
}

TEST(RmsNormTest, WeightedMultipleRows) {
  std::mt19937 rng(11);
  const int64_t rows = 5, n = 67;
  const std::vector<float> x = RandomVector(rng, rows * n, -3.0f, 3.0f);
  const std::vector<float> w = RandomVector(rng, n, -2.0f, 2.0f);
  std::vector<float> y(rows * n, -7.0f);
  cpu::RmsNorm(y.data(), x.data(), w.data(), rows, n, 1e-6f);
  ExpectClose(y, NaiveRmsNorm(x, w.data(), rows, n, 1e-6));
}

TEST(RmsNormTest, WeightlessMultipleRows) {
  std::mt19937 rng(12);
  const int64_t rows = 4, n = 256;
  const std::vector<float> x = RandomVector(rng, rows * n, -1.0f, 1.0f);
  std::vector<float> y(rows * n, -7.0f);
  cpu::RmsNorm(y.data(), x.data(), /*w=*/nullptr, rows, n, 1e-6f);
  ExpectClose(y, NaiveRmsNorm(x, nullptr, rows, n, 1e-6));
  // Each weightless output row has mean square 1 (up to eps).
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(y[r * n + i]) * y[r * n + i];
    EXPECT_NEAR(ss / n, 1.0, 1e-4) << "row " << r;
  }
}

TEST(RmsNormTest, InPlace) {
  std::mt19937 rng(13);
  const int64_t rows = 3, n = 33;
  const std::vector<float> x = RandomVector(rng, rows * n, -5.0f, 5.0f);
  const std::vector<float> w = RandomVector(rng, n, 0.5f, 1.5f);
  std::vector<float> buf = x;
  cpu::RmsNorm(buf.data(), buf.data(), w.data(), rows, n, 1e-6f);
  ExpectClose(buf, NaiveRmsNorm(x, w.data(), rows, n, 1e-6));

  std::vector<float> buf2 = x;
  cpu::RmsNorm(buf2.data(), buf2.data(), nullptr, rows, n, 1e-6f);
  ExpectClose(buf2, NaiveRmsNorm(x, nullptr, rows, n, 1e-6));
}

// The weight multiplies as-is: with w near 0, a (1 + w) implementation would be off by ~100%.
TEST(RmsNormTest, WeightIsNotOnePlusW) {
  std::mt19937 rng(14);
  const int64_t rows = 2, n = 48;
  const std::vector<float> x = RandomVector(rng, rows * n, -1.0f, 1.0f);
  const std::vector<float> w = RandomVector(rng, n, 0.1f, 0.3f);
  std::vector<float> y(rows * n);
  cpu::RmsNorm(y.data(), x.data(), w.data(), rows, n, 1e-6f);
  ExpectClose(y, NaiveRmsNorm(x, w.data(), rows, n, 1e-6));
  const std::vector<double> one_plus = NaiveRmsNorm(x, w.data(), rows, n, 1e-6, true);
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_GT(std::abs(y[i] - one_plus[i]), 0.5 * std::abs(one_plus[i])) << "index " << i;
  }
}

// eps is added to the mean square inside the root, so it dominates for tiny inputs.
TEST(RmsNormTest, EpsInsideTheRoot) {
  std::mt19937 rng(15);
  const int64_t n = 16;
  const std::vector<float> x = RandomVector(rng, n, -1e-3f, 1e-3f);
  std::vector<float> y(n);
  cpu::RmsNorm(y.data(), x.data(), nullptr, /*rows=*/1, n, 1e-2f);
  ExpectClose(y, NaiveRmsNorm(x, nullptr, 1, n, static_cast<double>(1e-2f)));
}

TEST(RmsNormTest, DispatchThroughCpuOps) {
  std::mt19937 rng(16);
  const int64_t rows = 2, n = 10;
  const std::vector<float> x = RandomVector(rng, rows * n, -1.0f, 1.0f);
  const std::vector<float> w = RandomVector(rng, n, -1.0f, 1.0f);
  std::vector<float> y(rows * n);
  CreateCpuOps()->RmsNorm(y.data(), x.data(), w.data(), rows, n, 1e-6f);
  ExpectClose(y, NaiveRmsNorm(x, w.data(), rows, n, 1e-6));
}

}  // namespace
}  // namespace g4
