// Tests of kernels/cpu/activation.cc: GeluTanhMul = gelu_pytorch_tanh(gate) ⊙ up, against a
// naive double-precision reference.
#include <cmath>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

std::vector<float> RandomVector(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

double GeluTanh(double z) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * z * (1.0 + std::tanh(c * (z + 0.044715 * z * z * z)));
}

// 1e-5 relative, plus the fp32 cancellation in 1 + tanh(·) for negative z (tanh → -1): that sum
// carries an absolute error of up to one fp32 ulp of 1 (2^-23), scaled by 0.5·|z·up|. PyTorch's
// fp32 kernel evaluates the same expression and has the same error.
double Tolerance(float z, float up, double want) {
  return 1e-5 * std::abs(want) + 0x1p-23 * std::abs(static_cast<double>(z) * up) + 1e-7;
}

double GeluErf(double z) { return 0.5 * z * (1.0 + std::erf(z / std::numbers::sqrt2)); }

TEST(GeluTanhMulTest, MatchesNaiveOnRandomData) {
  std::mt19937 rng(21);
  const int64_t n = 1001;
  const std::vector<float> gate = RandomVector(rng, n, -6.0f, 6.0f);
  const std::vector<float> up = RandomVector(rng, n, -2.0f, 2.0f);
  std::vector<float> out(n, -99.0f);
  cpu::GeluTanhMul(out.data(), gate.data(), up.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double want = GeluTanh(gate[i]) * up[i];
    EXPECT_NEAR(out[i], want, Tolerance(gate[i], up[i], want)) << "gate " << gate[i];
  }
}

// The tanh approximation, not the exact erf GELU: the two differ by more than 1e-4 somewhere
// in [-4, 4] (the maximum gap is ~5e-4 near |z| ≈ 2), and the kernel follows tanh.
TEST(GeluTanhMulTest, IsTanhApproximationNotErf) {
  const int64_t n = 801;
  std::vector<float> gate(n), up(n, 1.0f), out(n);
  for (int64_t i = 0; i < n; ++i) gate[i] = -4.0f + 0.01f * static_cast<float>(i);
  cpu::GeluTanhMul(out.data(), gate.data(), up.data(), n);
  double max_gap_to_erf = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double want = GeluTanh(gate[i]);
    EXPECT_NEAR(out[i], want, Tolerance(gate[i], 1.0f, want)) << "gate " << gate[i];
    max_gap_to_erf = std::max(max_gap_to_erf, std::abs(out[i] - GeluErf(gate[i])));
  }
  EXPECT_GT(max_gap_to_erf, 1e-4);
}

TEST(GeluTanhMulTest, KnownValuesAndTails) {
  const std::vector<float> gate = {0.0f, 1.0f, -1.0f, 30.0f, -30.0f, 1e20f, -1e20f};
  const std::vector<float> up = {5.0f, 1.0f, 1.0f, 2.0f, 3.0f, 1.0f, 1.0f};
  std::vector<float> out(gate.size());
  cpu::GeluTanhMul(out.data(), gate.data(), up.data(), static_cast<int64_t>(gate.size()));
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_NEAR(out[1], 0.8411919906082768, 1e-6);    // gelu_pytorch_tanh(1)
  EXPECT_NEAR(out[2], -0.15880800939172324, 1e-6);  // gelu_pytorch_tanh(-1)
  EXPECT_NEAR(out[3], 60.0f, 1e-5);                 // z · up for large z
  EXPECT_NEAR(out[4], 0.0f, 1e-6);                  // 0 for very negative z
  EXPECT_EQ(out[5], 1e20f);                         // z³ overflows to inf: still finite, = z
  EXPECT_TRUE(std::isfinite(out[6]));
  EXPECT_EQ(out[6], 0.0f);
}

// Output may alias gate (elementwise, each element read before it is written).
TEST(GeluTanhMulTest, OutputAliasesGate) {
  std::mt19937 rng(22);
  const int64_t n = 64;
  const std::vector<float> gate = RandomVector(rng, n, -3.0f, 3.0f);
  const std::vector<float> up = RandomVector(rng, n, -1.0f, 1.0f);
  std::vector<float> buf = gate;
  CreateCpuOps()->GeluTanhMul(buf.data(), buf.data(), up.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    const double want = GeluTanh(gate[i]) * up[i];
    EXPECT_NEAR(buf[i], want, Tolerance(gate[i], up[i], want));
  }
}

}  // namespace
}  // namespace g4
