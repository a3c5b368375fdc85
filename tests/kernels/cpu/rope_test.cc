// Tests of kernels/cpu/rope.cc (NeoX half-split rotary embedding, in place) against a naive
// double-precision reference. The angle is the fp32 product float(pos) · inv_freq[i], as
// transformers computes it; cos/sin and the rotation are done in double.
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

// Standard RoPE frequencies base^(-2i/rotary_dim) for the first rotary_dim/2 pairs, 0 (identity)
// for the remaining pairs (proportional RoPE's position-free part).
std::vector<float> InvFreq(int head_dim, int rotary_dim, double base) {
  std::vector<float> f(head_dim / 2, 0.0f);
  for (int i = 0; i < rotary_dim / 2; ++i) {
    f[i] = static_cast<float>(1.0 / std::pow(base, 2.0 * i / rotary_dim));
  }
  return f;
}

// Rotates pairs (i, i + D/2) of each head; elements outside heads·head_dim are left alone.
std::vector<double> NaiveRope(const std::vector<float>& x, const std::vector<int64_t>& positions,
                              const std::vector<float>& inv_freq, int heads, int head_dim,
                              int64_t stride) {
  std::vector<double> y(x.begin(), x.end());
  const int half = head_dim / 2;
  for (size_t t = 0; t < positions.size(); ++t) {
    for (int h = 0; h < heads; ++h) {
      const int64_t base = static_cast<int64_t>(t) * stride + static_cast<int64_t>(h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        const double c = std::cos(static_cast<double>(angle));
        const double s = std::sin(static_cast<double>(angle));
        const double a = x[base + i];
        const double b = x[base + i + half];
        y[base + i] = a * c - b * s;
        y[base + i + half] = b * c + a * s;
      }
    }
  }
  return y;
}

void ExpectClose(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], 1e-5 * std::abs(want[i]) + 1e-6) << "index " << i;
  }
}

struct RopeCase {
  int heads;
  int head_dim;
  int rotary_dim;
  int64_t stride;  // >= heads·head_dim
};

void CheckRope(const RopeCase& c, const std::vector<int64_t>& positions, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "heads=" << c.heads << " head_dim=" << c.head_dim
                                    << " rotary_dim=" << c.rotary_dim << " stride=" << c.stride);
  std::mt19937 rng(seed);
  const int64_t tokens = static_cast<int64_t>(positions.size());
  const std::vector<float> x = RandomVector(rng, tokens * c.stride, -2.0f, 2.0f);
  const std::vector<float> inv_freq = InvFreq(c.head_dim, c.rotary_dim, 10000.0);
  std::vector<float> got = x;
  cpu::Rope(got.data(), positions.data(), inv_freq.data(), tokens, c.heads, c.head_dim, c.stride);
  ExpectClose(got, NaiveRope(x, positions, inv_freq, c.heads, c.head_dim, c.stride));

  const int half = c.head_dim / 2;
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t j = 0; j < c.stride; ++j) {
      const int64_t idx = t * c.stride + j;
      const int64_t in_head = j % c.head_dim;
      const int pair = static_cast<int>(in_head % half);
      const bool padding = j >= static_cast<int64_t>(c.heads) * c.head_dim;
      // Row padding beyond heads·head_dim, position 0 and pairs with inv_freq 0 are untouched,
      // bit for bit.
      if (padding || positions[t] == 0 || inv_freq[pair] == 0.0f) {
        EXPECT_EQ(got[idx], x[idx]) << "token " << t << " offset " << j;
      }
    }
  }
}

TEST(RopeTest, SingleHeadFullRotary) {
  CheckRope({.heads = 1, .head_dim = 8, .rotary_dim = 8, .stride = 8}, {0, 1, 2, 3, 7}, 41);
}

TEST(RopeTest, MultipleHeadsPackedRows) {
  CheckRope({.heads = 4, .head_dim = 32, .rotary_dim = 32, .stride = 4 * 32}, {5, 6, 7, 8, 9, 10},
            42);
}

TEST(RopeTest, StrideLargerThanHeads) {
  // E.g. rotating only the q part of a fused qkv row, or padded rows.
  CheckRope({.heads = 3, .head_dim = 16, .rotary_dim = 16, .stride = 3 * 16 + 21},
            {0, 3, 1, 100, 4095}, 43);
}

TEST(RopeTest, PartialRotaryPairsWithZeroFrequencyAreIdentity) {
  // Proportional RoPE: a quarter of the pairs rotate, the rest have inv_freq 0.
  CheckRope({.heads = 2, .head_dim = 64, .rotary_dim = 16, .stride = 2 * 64 + 3},
            {1, 17, 1000, 123456}, 44);
  CheckRope({.heads = 2, .head_dim = 512, .rotary_dim = 128, .stride = 2 * 512}, {2, 65535, 262143},
            45);
}

TEST(RopeTest, LargePositionsUseFp32Angle) {
  // At large positions float(p)·inv_freq rounds: the kernel must use the fp32 product.
  CheckRope({.heads = 2, .head_dim = 16, .rotary_dim = 16, .stride = 32}, {100003, 500009, 1048573},
            46);
}

TEST(RopeTest, PositionZeroIsIdentity) {
  std::mt19937 rng(47);
  const int heads = 2, head_dim = 16;
  const std::vector<float> x = RandomVector(rng, heads * head_dim, -1.0f, 1.0f);
  const std::vector<float> inv_freq = InvFreq(head_dim, head_dim, 10000.0);
  const std::vector<int64_t> positions = {0};
  std::vector<float> got = x;
  cpu::Rope(got.data(), positions.data(), inv_freq.data(), 1, heads, head_dim, heads * head_dim);
  EXPECT_EQ(got, x);
}

// Pair layout: NeoX half-split (i, i + D/2), not interleaved (2i, 2i + 1). A unit vector in
// element 0 rotated by 90° moves to element D/2.
TEST(RopeTest, HalfSplitPairing) {
  const int head_dim = 8;
  std::vector<float> x(head_dim, 0.0f);
  x[0] = 1.0f;
  const float quarter_turn = static_cast<float>(std::numbers::pi / 2);
  const std::vector<float> inv_freq = {quarter_turn, 0.0f, 0.0f, 0.0f};
  const std::vector<int64_t> positions = {1};
  CreateCpuOps()->Rope(x.data(), positions.data(), inv_freq.data(), 1, 1, head_dim, head_dim);
  for (int i = 0; i < head_dim; ++i) {
    EXPECT_NEAR(x[i], i == head_dim / 2 ? 1.0 : 0.0, 1e-6) << "index " << i;
  }
}

TEST(RopeTest, PreservesPairNorms) {
  std::mt19937 rng(48);
  const int heads = 2, head_dim = 32;
  const std::vector<int64_t> positions = {3, 77, 901};
  const int64_t stride = heads * head_dim;
  const std::vector<float> x = RandomVector(rng, 3 * stride, -1.0f, 1.0f);
  const std::vector<float> inv_freq = InvFreq(head_dim, head_dim, 10000.0);
  std::vector<float> got = x;
  cpu::Rope(got.data(), positions.data(), inv_freq.data(), 3, heads, head_dim, stride);
  for (int64_t t = 0; t < 3; ++t) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < head_dim / 2; ++i) {
        const int64_t a = t * stride + h * head_dim + i, b = a + head_dim / 2;
        const double before = std::hypot(static_cast<double>(x[a]), x[b]);
        const double after = std::hypot(static_cast<double>(got[a]), got[b]);
        EXPECT_NEAR(after, before, 1e-6);
      }
    }
  }
}

}  // namespace
}  // namespace g4
