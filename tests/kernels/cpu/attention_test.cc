// Tests of kernels/cpu/attention.cc against a naive double-precision reference with explicit
// mask semantics: query i (position q_pos0 + i) sees key j (position k_pos0 + j) iff
// k_pos <= q_pos and (window == 0 || q_pos - k_pos < window); query head h reads KV head
// h / (num_heads / num_kv_heads); scores are q·k · scale (no implicit 1/sqrt(head_dim)).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

// Sentinel for row padding (beyond num_heads·head_dim) in q/k/v/out: padding must be neither
// read into the result nor written.
constexpr float kPad = 1234.5f;

bool Visible(const AttentionShape& s, int64_t q_pos, int64_t k_pos) {
  return k_pos <= q_pos && (s.window == 0 || q_pos - k_pos < s.window);
}

struct Reference {
  std::vector<double> out;        // [num_queries, num_heads, head_dim], packed
  std::vector<double> tolerance;  // per element, see NaiveAttention
};

Reference NaiveAttention(const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const AttentionShape& s) {
  const int d = s.head_dim;
  const int group = s.num_heads / s.num_kv_heads;
  Reference r;
  r.out.assign(static_cast<size_t>(s.num_queries) * s.num_heads * d, 0.0);
  r.tolerance.assign(r.out.size(), 0.0);
  for (int i = 0; i < s.num_queries; ++i) {
    const int64_t qp = s.q_pos0 + i;
    for (int h = 0; h < s.num_heads; ++h) {
      const int kvh = h / group;
      const float* qv = q.data() + i * s.q_stride + static_cast<int64_t>(h) * d;
      std::vector<double> score(s.num_keys, 0.0);
      std::vector<bool> vis(s.num_keys, false);
      double mx = -INFINITY, score_mag = 0.0;
      for (int j = 0; j < s.num_keys; ++j) {
        if (!Visible(s, qp, s.k_pos0 + j)) continue;
        vis[j] = true;
        const float* kv = k.data() + j * s.kv_stride + static_cast<int64_t>(kvh) * d;
        double dot = 0.0, mag = 0.0;
        for (int c = 0; c < d; ++c) {
          dot += static_cast<double>(qv[c]) * kv[c];
          mag += std::abs(static_cast<double>(qv[c]) * kv[c]);
        }
        score[j] = dot * s.scale;
        score_mag = std::max(score_mag, mag * std::abs(s.scale));
        mx = std::max(mx, score[j]);
      }
      double sum = 0.0;
      for (int j = 0; j < s.num_keys; ++j) {
        if (vis[j]) sum += (score[j] = std::exp(score[j] - mx));
      }
      double* o = r.out.data() + (static_cast<int64_t>(i) * s.num_heads + h) * d;
      double* tol = r.tolerance.data() + (static_cast<int64_t>(i) * s.num_heads + h) * d;
      for (int j = 0; j < s.num_keys; ++j) {
        if (!vis[j]) continue;
        const double p = score[j] / sum;
        const float* vv = v.data() + j * s.kv_stride + static_cast<int64_t>(kvh) * d;
        for (int c = 0; c < d; ++c) {
          o[c] += p * vv[c];
          tol[c] += p * std::abs(vv[c]);
        }
      }
      // fp32 error budget, relative to Σ p·|v| (floored at 1e-2 so cancellation in the output
      // does not make it vanish): 2e-6 for the fp32 softmax and P·V, plus 5e-7 per unit of
      // Σ|q·k|·scale, the magnitude behind the fp32 score rounding. Observed errors stay below
      // ~1/15 of this budget; any masking or head-mapping mistake is off by orders more.
      for (int c = 0; c < d; ++c) {
        tol[c] = (2e-6 + 5e-7 * (1.0 + score_mag)) * std::max(tol[c], 1e-2);
      }
    }
  }
  return r;
}

struct Buffers {
  std::vector<float> q, k, v, out;
};

// Fresh random q/k/v at the given strides (padding filled with kPad) and a NaN-free output
// filled with kPad, so overwrite and padding are both checked.
Buffers MakeBuffers(const AttentionShape& s, uint32_t seed, float qk_range = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> qk(-qk_range, qk_range), vd(-1.0f, 1.0f);
  Buffers b;
  const int64_t q_width = static_cast<int64_t>(s.num_heads) * s.head_dim;
  const int64_t kv_width = static_cast<int64_t>(s.num_kv_heads) * s.head_dim;
  b.q.assign(s.num_queries * s.q_stride, kPad);
  b.out.assign(s.num_queries * s.q_stride, kPad);
  b.k.assign(s.num_keys * s.kv_stride, kPad);
  b.v.assign(s.num_keys * s.kv_stride, kPad);
  for (int i = 0; i < s.num_queries; ++i) {
    for (int64_t c = 0; c < q_width; ++c) b.q[i * s.q_stride + c] = qk(rng);
  }
  for (int j = 0; j < s.num_keys; ++j) {
    for (int64_t c = 0; c < kv_width; ++c) {
      b.k[j * s.kv_stride + c] = qk(rng);
      b.v[j * s.kv_stride + c] = vd(rng);
    }
  }
  return b;
}

// Runs the kernel and returns the largest |out - ref| / tolerance (<= 1 passes).
double CheckAttention(const AttentionShape& s, uint32_t seed, float qk_range = 1.0f) {
  SCOPED_TRACE(::testing::Message()
               << "queries=" << s.num_queries << " q_pos0=" << s.q_pos0 << " keys=" << s.num_keys
               << " k_pos0=" << s.k_pos0 << " heads=" << s.num_heads << "/" << s.num_kv_heads
               << " head_dim=" << s.head_dim << " q_stride=" << s.q_stride
               << " kv_stride=" << s.kv_stride << " window=" << s.window << " scale=" << s.scale);
  Buffers b = MakeBuffers(s, seed, qk_range);
  cpu::Attention(b.out.data(), b.q.data(), b.k.data(), b.v.data(), s);
  const Reference ref = NaiveAttention(b.q, b.k, b.v, s);
  const int64_t width = static_cast<int64_t>(s.num_heads) * s.head_dim;
  double worst = 0.0;
  int failures = 0;
  for (int i = 0; i < s.num_queries; ++i) {
    for (int64_t c = 0; c < s.q_stride; ++c) {
      const float got = b.out[i * s.q_stride + c];
      if (c >= width) {
        EXPECT_EQ(got, kPad) << "padding written: query " << i << " offset " << c;
        continue;
      }
      const double want = ref.out[i * width + c];
      const double tol = ref.tolerance[i * width + c];
      const double err = std::abs(got - want);
      worst = std::max(worst, err / tol);
      if (!(err <= tol) && ++failures <= 10) {
        ADD_FAILURE() << "query " << i << " head " << c / s.head_dim << " dim " << c % s.head_dim
                      << ": got " << got << " want " << want << " (tol " << tol << ")";
      }
    }
  }
  EXPECT_EQ(failures, 0);
  return worst;
}

AttentionShape Shape(int num_queries, int64_t q_pos0, int num_keys, int64_t k_pos0, int heads,
                     int kv_heads, int head_dim, int window = 0) {
  AttentionShape s;
  s.num_queries = num_queries;
  s.q_pos0 = q_pos0;
  s.num_keys = num_keys;
  s.k_pos0 = k_pos0;
  s.num_heads = heads;
  s.num_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.q_stride = static_cast<int64_t>(heads) * head_dim;
  s.kv_stride = static_cast<int64_t>(kv_heads) * head_dim;
  s.window = window;
  s.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  return s;
}

TEST(AttentionTest, CausalPrefill) {
  CheckAttention(Shape(37, 0, 37, 0, /*heads=*/8, /*kv_heads=*/4, /*head_dim=*/32), 61);
  CheckAttention(Shape(1, 0, 1, 0, 2, 1, 16), 62);
}

// Chunked prefill: a second chunk of queries sees the cached keys of the first.
TEST(AttentionTest, ChunkedPrefillContinuation) {
  CheckAttention(Shape(/*num_queries=*/23, /*q_pos0=*/41, /*num_keys=*/64, /*k_pos0=*/0, 4, 2, 32),
                 63);
  CheckAttention(Shape(23, 41, 64, 0, 4, 2, 32, /*window=*/8), 64);
}

TEST(AttentionTest, DecodeAfterEviction) {
  // One query at position 1000 over the last 64 cached keys (positions 937..1000).
  CheckAttention(Shape(1, 1000, 64, 937, 8, 2, 32, /*window=*/64), 65);
  CheckAttention(Shape(1, 1000, 64, 937, 8, 2, 32, /*window=*/0), 66);
  // The cache holds more keys than the window: only the last 16 are visible.
  CheckAttention(Shape(1, 1000, 64, 937, 8, 2, 32, /*window=*/16), 67);
  // Decode at the very first position: exactly one visible key, output = v.
  CheckAttention(Shape(1, 0, 1, 0, 4, 1, 16), 68);
}

TEST(AttentionTest, SlidingWindowPrefill) {
  CheckAttention(Shape(20, 0, 20, 0, 4, 2, 16, /*window=*/4), 69);
  CheckAttention(Shape(20, 0, 20, 0, 4, 2, 16, /*window=*/1), 70);  // only the diagonal
}

// More queries than the kernel's 128-query block, so blocks have different key spans.
TEST(AttentionTest, LongPrefillAcrossQueryBlocks) {
  CheckAttention(Shape(300, 0, 300, 0, 4, 2, 32, /*window=*/16), 71);
  CheckAttention(Shape(300, 0, 300, 0, 4, 2, 32, /*window=*/0), 72);
  CheckAttention(Shape(300, 0, 300, 0, 4, 2, 32, /*window=*/128), 73);
  CheckAttention(Shape(257, 0, 257, 0, 2, 1, 16, /*window=*/129), 74);
  // Chunk of 300 queries after 100 cached keys of which the window keeps only some.
  CheckAttention(Shape(300, 500, 364, 436, 4, 2, 32, /*window=*/32), 75);
}

TEST(AttentionTest, StridesLargerThanPackedWidth) {
  AttentionShape s = Shape(29, 0, 29, 0, /*heads=*/4, /*kv_heads=*/2, /*head_dim=*/16);
  s.q_stride = 4 * 16 + 13;
  s.kv_stride = 2 * 16 + 7;
  CheckAttention(s, 76);
  s.window = 5;
  CheckAttention(s, 77);
  // Decode with strided rows (e.g. K and V interleaved in one cache row).
  AttentionShape d = Shape(1, 200, 150, 51, 8, 1, 32, /*window=*/100);
  d.q_stride = 8 * 32 + 32;
  d.kv_stride = 3 * 32;
  CheckAttention(d, 78);
  // Long prefill with strides, across query blocks.
  AttentionShape l = Shape(200, 0, 200, 0, 2, 2, 16, /*window=*/40);
  l.q_stride = 2 * 16 + 1;
  l.kv_stride = 2 * 16 + 3;
  CheckAttention(l, 79);
}

// Gemma 4 uses scale 1.0 on normalized q/k: the kernel must apply exactly `scale`, never an
// implicit 1/sqrt(head_dim).
TEST(AttentionTest, ScaleIsAppliedAsGiven) {
  for (float scale : {1.0f, 0.3f, 2.0f}) {
    AttentionShape s = Shape(17, 0, 17, 0, 4, 2, 64);
    s.scale = scale;
    CheckAttention(s, 80, /*qk_range=*/0.5f);
  }
  // The reference with scale 1 and with 1/sqrt(D) differ far beyond tolerance on this data,
  // so the check above would catch an implicit 1/sqrt(D).
  AttentionShape a = Shape(17, 0, 17, 0, 4, 2, 64);
  a.scale = 1.0f;
  AttentionShape b = a;
  b.scale = 1.0f / 8.0f;
  const Buffers buf = MakeBuffers(a, 80, 0.5f);
  const Reference ra = NaiveAttention(buf.q, buf.k, buf.v, a);
  const Reference rb = NaiveAttention(buf.q, buf.k, buf.v, b);
  double max_diff = 0.0;
  for (size_t i = 0; i < ra.out.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(ra.out[i] - rb.out[i]));
  }
  EXPECT_GT(max_diff, 1e-2);
}

// Large scores (peaked softmax) stay finite: the softmax subtracts the row maximum.
TEST(AttentionTest, PeakedSoftmaxIsStable) {
  AttentionShape s = Shape(40, 0, 40, 0, 2, 1, 32);
  s.scale = 10.0f;
  CheckAttention(s, 81, /*qk_range=*/3.0f);
}

// Keys outside every query's window (and future keys) do not influence the result: changing
// them leaves the output unchanged.
TEST(AttentionTest, MaskedKeysHaveNoInfluence) {
  AttentionShape s = Shape(10, 50, 60, 0, 4, 2, 16, /*window=*/8);
  Buffers b = MakeBuffers(s, 82);
  std::vector<float> out1(b.out.size(), 0.0f), out2(b.out.size(), 0.0f);
  cpu::Attention(out1.data(), b.q.data(), b.k.data(), b.v.data(), s);
  // Keys at positions < 50 - 8 + 1 = 43 are outside every window; keys 60.. don't exist, and
  // keys > 59 would be future. Perturb the hidden ones heavily.
  for (int j = 0; j < 43; ++j) {
    for (int64_t c = 0; c < s.kv_stride; ++c) {
      b.k[j * s.kv_stride + c] = 100.0f;
      b.v[j * s.kv_stride + c] = -100.0f;
    }
  }
  cpu::Attention(out2.data(), b.q.data(), b.k.data(), b.v.data(), s);
  for (size_t i = 0; i < out1.size(); ++i) EXPECT_NEAR(out1[i], out2[i], 1e-6) << "index " << i;

  // Causal: in a prefill, perturbing the last key changes only the last query.
  AttentionShape p = Shape(12, 0, 12, 0, 2, 1, 16);
  Buffers c = MakeBuffers(p, 83);
  std::vector<float> before(c.out.size()), after(c.out.size());
  cpu::Attention(before.data(), c.q.data(), c.k.data(), c.v.data(), p);
  for (int64_t x = 0; x < p.kv_stride; ++x) c.v[11 * p.kv_stride + x] += 5.0f;
  cpu::Attention(after.data(), c.q.data(), c.k.data(), c.v.data(), p);
  for (int i = 0; i < 11; ++i) {
    for (int64_t x = 0; x < p.q_stride; ++x) {
      EXPECT_NEAR(before[i * p.q_stride + x], after[i * p.q_stride + x], 1e-6) << "query " << i;
    }
  }
  double last_diff = 0.0;
  for (int64_t x = 0; x < p.q_stride; ++x) {
    last_diff = std::max(last_diff, std::abs(static_cast<double>(before[11 * p.q_stride + x]) -
                                             after[11 * p.q_stride + x]));
  }
  EXPECT_GT(last_diff, 1e-3);
}

// GQA group size × head_dim grid, prefill with and without a window.
class AttentionGqaTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(AttentionGqaTest, MatchesNaive) {
  const auto [group, head_dim] = GetParam();
  const int kv_heads = group == 8 ? 1 : 2;
  const int heads = kv_heads * group;
  const uint32_t seed = 100 + group * 1000 + head_dim;
  CheckAttention(Shape(33, 0, 33, 0, heads, kv_heads, head_dim), seed);
  CheckAttention(Shape(33, 0, 33, 0, heads, kv_heads, head_dim, /*window=*/6), seed + 1);
  CheckAttention(Shape(1, 90, 40, 51, heads, kv_heads, head_dim, /*window=*/0), seed + 2);
  // head_dim 512 with scale 1.0 (Gemma 4 global layers on normalized q/k).
  AttentionShape s = Shape(9, 0, 9, 0, heads, kv_heads, head_dim);
  s.scale = 1.0f;
  CheckAttention(s, seed + 3, /*qk_range=*/1.0f / std::sqrt(static_cast<float>(head_dim)) * 2);
}

INSTANTIATE_TEST_SUITE_P(GroupsAndHeadDims, AttentionGqaTest,
                         ::testing::Combine(::testing::Values(1, 2, 8),
                                            ::testing::Values(16, 32, 512)),
                         [](const ::testing::TestParamInfo<std::tuple<int, int>>& info) {
                           return "group" + std::to_string(std::get<0>(info.param)) + "_dim" +
                                  std::to_string(std::get<1>(info.param));
                         });

TEST(AttentionTest, DispatchThroughCpuOps) {
  const AttentionShape s = Shape(5, 0, 5, 0, 2, 1, 16);
  Buffers b = MakeBuffers(s, 84);
  std::vector<float> direct(b.out.size()), via_ops(b.out.size());
  cpu::Attention(direct.data(), b.q.data(), b.k.data(), b.v.data(), s);
  CreateCpuOps()->Attention(via_ops.data(), b.q.data(), b.k.data(), b.v.data(), s);
  EXPECT_EQ(direct, via_ops);
}

// Batch-invariant mode: a query computed inside a prefill block gives bitwise the output of the
// same query computed alone over its visible keys (a decode step), with and without a window,
// across query blocks; and it stays accurate.
TEST(AttentionTest, BatchInvariantQueryDoesNotDependOnItsBlock) {
  for (int window : {0, 7}) {
    const AttentionShape s = Shape(150, 0, 150, 0, 4, 2, 32, window);  // two query blocks
    Buffers b = MakeBuffers(s, 911 + window);
    cpu::Attention(b.out.data(), b.q.data(), b.k.data(), b.v.data(), s, /*batch_invariant=*/true);
    const Reference ref = NaiveAttention(b.q, b.k, b.v, s);
    for (int i = 0; i < s.num_queries; ++i) {
      AttentionShape one = s;
      one.num_queries = 1;
      one.q_pos0 = i;
      one.num_keys = i + 1;  // the keys a decode step at position i has
      std::vector<float> alone(s.q_stride, kPad);
      cpu::Attention(alone.data(), b.q.data() + static_cast<int64_t>(i) * s.q_stride, b.k.data(),
                     b.v.data(), one, /*batch_invariant=*/true);
      const int64_t width = static_cast<int64_t>(s.num_heads) * s.head_dim;
      for (int64_t c = 0; c < width; ++c) {
        const float in_block = b.out[i * s.q_stride + c];
        ASSERT_EQ(in_block, alone[c]) << "window " << window << " query " << i << " column " << c;
        ASSERT_NEAR(in_block, ref.out[i * width + c], ref.tolerance[i * width + c]);
      }
    }
  }
}

}  // namespace
}  // namespace g4
