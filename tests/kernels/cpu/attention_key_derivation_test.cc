// Attention with K derived from V (KeyDerivation, kernels/ops.h) against the stored-K path.
//
// Gemma 4's k_eq_v layers get K and V from the same raw k_proj rows r: V = RmsNorm(r) (no
// weight), K = Rope(RmsNorm(r; k_norm)). The test builds exactly those K and V with the CPU
// kernels, runs Attention once with K stored and once with K derived from V (k = nullptr), and
// requires the outputs to be equal bit for bit: the derivation must be the same arithmetic
// (V ⊙ w in fp32, then the same rotation with the same cos/sin), not an approximation of it.
// The stored path itself is checked against a naive reference in attention_test.cc.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_table.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

constexpr float kEps = 1e-6f;

// As worker/model RopeInvFreq: theta^(-2i/D) for the first `rotated` pairs, 0 for the rest.
std::vector<float> InvFreq(int head_dim, int rotated, float theta) {
  std::vector<float> f(head_dim / 2, 0.0f);
  for (int i = 0; i < rotated; ++i) {
    f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  }
  return f;
}

struct Case {
  int num_queries;
  int64_t q_pos0;
  int num_keys;
  int64_t k_pos0;
  int heads;
  int kv_heads;
  int head_dim;
  int window = 0;
  int rotated_pairs = -1;  // -1: a quarter of the pairs (proportional RoPE); else this many
  int64_t q_pad = 0;       // extra floats per query row
  int64_t kv_pad = 0;      // extra floats per K/V row
};

struct Inputs {
  AttentionShape shape;
  std::vector<float> q, k, v, k_norm, inv_freq;
};

// The K/V a k_eq_v layer caches for random raw k_proj rows at positions k_pos0.., with a
// random k_norm weight around 1 ± 0.3 (so a missing or misapplied weight shows).
Inputs MakeInputs(const Case& c, uint32_t seed) {
  Inputs in;
  AttentionShape& s = in.shape;
  s.num_queries = c.num_queries;
  s.q_pos0 = c.q_pos0;
  s.num_keys = c.num_keys;
  s.k_pos0 = c.k_pos0;
  s.num_heads = c.heads;
  s.num_kv_heads = c.kv_heads;
  s.head_dim = c.head_dim;
  s.q_stride = static_cast<int64_t>(c.heads) * c.head_dim + c.q_pad;
  s.kv_stride = static_cast<int64_t>(c.kv_heads) * c.head_dim + c.kv_pad;
  s.window = c.window;
  s.scale = 1.0f;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> weight(0.7f, 1.3f);
  const int d = c.head_dim;
  in.k_norm.resize(d);
  for (float& w : in.k_norm) w = weight(rng);
  in.inv_freq = InvFreq(d, c.rotated_pairs < 0 ? d / 8 : c.rotated_pairs, 1e6f);
  // Queries as the model makes them: normalized rows (scores of order 1-10), padding is NaN so
  // reading it would show.
  in.q.assign(c.num_queries * s.q_stride, std::nanf(""));
  for (int i = 0; i < c.num_queries; ++i) {
    for (int h = 0; h < c.heads; ++h) {
      float* row = &in.q[i * s.q_stride + static_cast<int64_t>(h) * d];
      for (int x = 0; x < d; ++x) row[x] = normal(rng) * 0.15f;
    }
  }
  in.k.assign(c.num_keys * s.kv_stride, std::nanf(""));
  in.v.assign(c.num_keys * s.kv_stride, std::nanf(""));
  std::vector<float> raw(d);
  std::vector<int64_t> pos(1);
  for (int j = 0; j < c.num_keys; ++j) {
    for (int g = 0; g < c.kv_heads; ++g) {
      for (float& x : raw) x = normal(rng) * 3.0f;
      float* k = &in.k[j * s.kv_stride + static_cast<int64_t>(g) * d];
      float* v = &in.v[j * s.kv_stride + static_cast<int64_t>(g) * d];
      cpu::RmsNorm(k, raw.data(), in.k_norm.data(), 1, d, kEps);
      cpu::RmsNorm(v, raw.data(), nullptr, 1, d, kEps);
      pos[0] = c.k_pos0 + j;
      cpu::Rope(k, pos.data(), in.inv_freq.data(), 1, 1, d, d);
    }
  }
  return in;
}

AttentionShape Derived(const Inputs& in) {
  AttentionShape s = in.shape;
  s.k_derive.k_norm = in.k_norm.data();
  s.k_derive.inv_freq = in.inv_freq.data();
  return s;
}

void ExpectSameBits(const std::vector<float>& stored, const std::vector<float>& derived,
                    const AttentionShape& s) {
  const int64_t width = static_cast<int64_t>(s.num_heads) * s.head_dim;
  int mismatches = 0;
  for (int i = 0; i < s.num_queries; ++i) {
    for (int64_t c = 0; c < width; ++c) {
      const float a = stored[i * s.q_stride + c], b = derived[i * s.q_stride + c];
      ASSERT_FALSE(std::isnan(a)) << "query " << i << " offset " << c;
      if (a != b && ++mismatches <= 5) {
        ADD_FAILURE() << "query " << i << " head " << c / s.head_dim << " dim " << c % s.head_dim
                      << ": stored K " << a << ", derived K " << b;
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
}

void CheckCase(const Case& c, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "queries=" << c.num_queries << " q_pos0=" << c.q_pos0
                                    << " keys=" << c.num_keys << " k_pos0=" << c.k_pos0
                                    << " heads=" << c.heads << "/" << c.kv_heads
                                    << " head_dim=" << c.head_dim << " window=" << c.window);
  const Inputs in = MakeInputs(c, seed);
  std::vector<float> stored(in.q.size(), 0.0f), derived(in.q.size(), 0.0f);
  cpu::Attention(stored.data(), in.q.data(), in.k.data(), in.v.data(), in.shape);
  cpu::Attention(derived.data(), in.q.data(), nullptr, in.v.data(), Derived(in));
  ExpectSameBits(stored, derived, in.shape);
}

TEST(AttentionKeyDerivationTest, DecodeAfterACachedPrefix) {
  // One query at the end of the cache, keys starting at k_pos0 > 0 (rotation angles of the
  // absolute positions), more keys than one 128-key tile.
  CheckCase({1, 700, 301, 400, /*heads=*/8, /*kv_heads=*/1, /*head_dim=*/512}, 1);
  CheckCase({1, 2000, 1001, 1000, 32, 4, 512}, 2);    // 31B global layer shape
  CheckCase({1, 262143, 64, 262080, 16, 2, 512}, 3);  // 26B shape at the last position
  CheckCase({1, 0, 1, 0, 4, 2, 32}, 4);               // the very first token
}

TEST(AttentionKeyDerivationTest, PrefillAndChunkedPrefill) {
  CheckCase({37, 0, 37, 0, 8, 4, 32}, 10);
  // A chunk after a cached prefix, across the 128-query blocks.
  CheckCase({200, 300, 500, 0, 8, 1, 64}, 11);
  CheckCase({130, 1000, 180, 950, 32, 4, 512}, 12);
}

TEST(AttentionKeyDerivationTest, Windows) {
  CheckCase({1, 1000, 64, 937, 8, 2, 32, /*window=*/16}, 20);
  CheckCase({40, 100, 140, 0, 4, 2, 32, /*window=*/8}, 21);
  CheckCase({300, 500, 364, 436, 4, 2, 32, /*window=*/32}, 22);
  CheckCase({5, 10, 6, 9, 4, 2, 32, /*window=*/1}, 23);  // only the diagonal
}

TEST(AttentionKeyDerivationTest, GqaGroupsAndRotatedPairs) {
  for (int group : {1, 2, 4, 8}) {
    for (int head_dim : {16, 256, 512}) {
      const int kv_heads = group == 8 ? 1 : 2;
      const uint32_t seed = 100 + group * 1000 + head_dim;
      CheckCase({1, 90, 40, 51, kv_heads * group, kv_heads, head_dim}, seed);
      CheckCase({33, 20, 53, 0, kv_heads * group, kv_heads, head_dim, /*window=*/6}, seed + 1);
      // Every pair rotated (default RoPE) and none rotated.
      CheckCase({9, 40, 49, 0, kv_heads * group, kv_heads, head_dim, 0, head_dim / 2}, seed + 2);
      CheckCase({1, 40, 41, 0, kv_heads * group, kv_heads, head_dim, 0, 0}, seed + 3);
    }
  }
}

TEST(AttentionKeyDerivationTest, PaddedRows) {
  Case c{29, 10, 39, 0, 4, 2, 16, /*window=*/5};
  c.q_pad = 13;
  c.kv_pad = 7;
  CheckCase(c, 30);
  Case d{1, 200, 150, 51, 8, 1, 32, /*window=*/100};
  d.q_pad = 32;
  d.kv_pad = 64;  // e.g. V rows inside a wider page row
  CheckCase(d, 31);
}

// The derivation uses V and the weight, not stale K: derived output differs from the stored one
// when the weight differs, and K rows are never read.
TEST(AttentionKeyDerivationTest, UsesTheWeightAndNeverReadsK) {
  const Case c{20, 30, 50, 0, 8, 2, 32};
  Inputs in = MakeInputs(c, 40);
  std::vector<float> stored(in.q.size()), derived(in.q.size());
  cpu::Attention(stored.data(), in.q.data(), in.k.data(), in.v.data(), in.shape);
  std::vector<float> poisoned_k(in.k.size(), std::nanf(""));
  cpu::Attention(derived.data(), in.q.data(), poisoned_k.data(), in.v.data(), Derived(in));
  ExpectSameBits(stored, derived, in.shape);

  for (float& w : in.k_norm) w *= 1.5f;
  cpu::Attention(derived.data(), in.q.data(), nullptr, in.v.data(), Derived(in));
  double max_diff = 0.0;
  for (size_t i = 0; i < stored.size(); ++i) {
    if (!std::isnan(stored[i])) max_diff = std::max<double>(max_diff, std::abs(stored[i] - derived[i]));
  }
  EXPECT_GT(max_diff, 1e-3);
}

// Through CpuOps, whose cos/sin table persists across calls: a growing sequence (prefill, then
// decode steps) and a second rotary table in between (another layer type) still give exactly
// the stored-K results.
TEST(AttentionKeyDerivationTest, CpuOpsTableAcrossCalls) {
  std::unique_ptr<Ops> ops = CreateCpuOps();
  // 100 query rows; decode steps use the first. `other` rotates every pair: another inv_freq.
  const Case full{100, 300, 400, 0, 8, 2, 64};
  Case other = full;
  other.rotated_pairs = 32;
  const Inputs a = MakeInputs(full, 50), b = MakeInputs(other, 51);
  // Runs `in` over its first `keys` keys with `queries` queries ending at the last key.
  auto check = [&](const Inputs& in, int keys, int queries) {
    AttentionShape s = in.shape;
    s.num_keys = keys;
    s.num_queries = queries;
    s.q_pos0 = keys - queries;
    std::vector<float> stored(in.q.size(), 0.0f), derived(in.q.size(), 0.0f);
    cpu::Attention(stored.data(), in.q.data(), in.k.data(), in.v.data(), s);
    AttentionShape d = s;
    d.k_derive = Derived(in).k_derive;
    ops->Attention(derived.data(), in.q.data(), nullptr, in.v.data(), d);
    ExpectSameBits(stored, derived, s);
  };
  for (int len : {100, 101, 102, 250, 400}) {
    check(a, len, len == 100 ? 100 : 1);
    check(b, len / 2, 1);
  }
}

TEST(RopeTableTest, HoldsTheRopeAnglesOfEachPosition) {
  const std::vector<float> inv = InvFreq(512, 64, 1e6f);
  cpu::RopeTable t;
  t.Cover(inv.data(), 256, 10);
  EXPECT_EQ(t.rotated_pairs(), 64);
  EXPECT_EQ(t.size(), 10);
  t.Cover(inv.data(), 256, 300000);
  EXPECT_EQ(t.size(), 300000);
  for (int64_t p : {int64_t{0}, int64_t{1}, int64_t{9}, int64_t{12345}, int64_t{299999}}) {
    for (int i = 0; i < 64; ++i) {
      const float angle = static_cast<float>(p) * inv[i];
      ASSERT_EQ(t.Cos(p)[i], std::cos(angle)) << p << " " << i;
      ASSERT_EQ(t.Sin(p)[i], std::sin(angle)) << p << " " << i;
    }
  }
  t.Cover(inv.data(), 256, 5);  // never shrinks
  EXPECT_EQ(t.size(), 300000);
  const std::vector<float> all = InvFreq(32, 16, 1e4f);
  t.Cover(all.data(), 16, 3);  // another table replaces it
  EXPECT_EQ(t.rotated_pairs(), 16);
  EXPECT_EQ(t.size(), 3);
  EXPECT_EQ(t.Sin(2)[15], std::sin(2.0f * all[15]));
}

}  // namespace
}  // namespace g4
