// Tests of kernels/cpu/elementwise.cc (Embed, Add, Scale, Mul, Softcap) against naive
// double-precision references.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

constexpr double kRelTol = 1e-6;

std::vector<float> RandomVector(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want, double rel) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], rel * std::abs(want[i]) + 1e-30) << "index " << i;
  }
}

TEST(EmbedTest, GathersRowsTimesScale) {
  std::mt19937 rng(31);
  const int64_t vocab = 50, dim = 37;
  const std::vector<float> table = RandomVector(rng, vocab * dim, -1.0f, 1.0f);
  // Out of order, repeated, first and last rows.
  const std::vector<int32_t> ids = {7, 0, 49, 7, 23, 1};
  const int64_t tokens = static_cast<int64_t>(ids.size());
  const float scale = std::sqrt(static_cast<float>(dim));
  std::vector<float> out(tokens * dim, -99.0f);
  cpu::Embed(out.data(), table.data(), ids.data(), tokens, dim, scale);
  std::vector<double> want(tokens * dim);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t i = 0; i < dim; ++i) {
      want[t * dim + i] = static_cast<double>(table[ids[t] * dim + i]) * scale;
    }
  }
  ExpectClose(out, want, kRelTol);
}

TEST(EmbedTest, ScaleOneCopiesExactly) {
  std::mt19937 rng(32);
  const int64_t vocab = 5, dim = 8;
  const std::vector<float> table = RandomVector(rng, vocab * dim, -1.0f, 1.0f);
  const std::vector<int32_t> ids = {4, 2};
  std::vector<float> out(2 * dim);
  CreateCpuOps()->Embed(out.data(), table.data(), ids.data(), 2, dim, 1.0f);
  for (int64_t i = 0; i < dim; ++i) {
    EXPECT_EQ(out[i], table[4 * dim + i]);
    EXPECT_EQ(out[dim + i], table[2 * dim + i]);
  }
}

TEST(ElementwiseTest, Add) {
  std::mt19937 rng(33);
  const int64_t n = 1003;
  const std::vector<float> x = RandomVector(rng, n, -10.0f, 10.0f);
  const std::vector<float> y = RandomVector(rng, n, -10.0f, 10.0f);
  std::vector<float> got = x;
  cpu::Add(got.data(), y.data(), n);
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(x[i]) + y[i];
  // One fp32 rounding of the sum; relative to the operand magnitudes (cancellation).
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-6 * (std::abs(x[i]) + std::abs(y[i]))) << "index " << i;
  }
}

TEST(ElementwiseTest, AddInPlaceDoubles) {
  std::mt19937 rng(34);
  const int64_t n = 17;
  const std::vector<float> x = RandomVector(rng, n, -1.0f, 1.0f);
  std::vector<float> got = x;
  CreateCpuOps()->Add(got.data(), got.data(), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(got[i], 2.0f * x[i]);
}

TEST(ElementwiseTest, Scale) {
  std::mt19937 rng(35);
  const int64_t n = 515;
  const std::vector<float> x = RandomVector(rng, n, -10.0f, 10.0f);
  std::vector<float> got = x;
  const float s = -0.3737f;
  cpu::Scale(got.data(), s, n);
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(x[i]) * s;
  ExpectClose(got, want, kRelTol);
}

TEST(ElementwiseTest, Mul) {
  std::mt19937 rng(36);
  const int64_t n = 515;
  const std::vector<float> x = RandomVector(rng, n, -10.0f, 10.0f);
  const std::vector<float> y = RandomVector(rng, n, -3.0f, 3.0f);
  std::vector<float> got = x;
  cpu::Mul(got.data(), y.data(), n);
  std::vector<double> want(n);
  for (int64_t i = 0; i < n; ++i) want[i] = static_cast<double>(x[i]) * y[i];
  ExpectClose(got, want, kRelTol);
}

TEST(ElementwiseTest, Softcap) {
  std::mt19937 rng(37);
  const int64_t n = 1001;
  // Wide range: linear regime near 0, saturation at ±cap far out.
  std::vector<float> x = RandomVector(rng, n, -200.0f, 200.0f);
  x.push_back(0.0f);
  x.push_back(1e30f);
  x.push_back(-1e30f);
  const float cap = 30.0f;
  std::vector<float> got = x;
  cpu::Softcap(got.data(), cap, static_cast<int64_t>(got.size()));
  std::vector<double> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = cap * std::tanh(static_cast<double>(x[i]) / cap);
  ExpectClose(got, want, 1e-5);
  for (float g : got) EXPECT_LE(std::abs(g), cap);
  EXPECT_EQ(got[n], 0.0f);
  EXPECT_EQ(got[n + 1], cap);
  EXPECT_EQ(got[n + 2], -cap);
}

TEST(ElementwiseTest, SoftcapIsNearIdentityForSmallInputs) {
  std::mt19937 rng(38);
  const int64_t n = 64;
  const std::vector<float> x = RandomVector(rng, n, -0.01f, 0.01f);
  std::vector<float> got = x;
  CreateCpuOps()->Softcap(got.data(), 50.0f, n);
  for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], x[i], 1e-6 * std::abs(x[i]) + 1e-12);
}

}  // namespace
}  // namespace g4
