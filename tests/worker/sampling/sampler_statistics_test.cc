// Goodness-of-fit tests: draws from the sampler against the analytically renormalized target
// distribution, with fixed seeds, so every run sees the same draws and the same statistic.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "worker/sampling/sampler.h"

namespace g4 {
namespace {

constexpr int kDraws = 20000;
const std::vector<float> kLogits = {1.0f, 0.2f, -0.3f, 1.5f, 0.0f, -1.0f, 0.7f, -0.6f, 0.4f, -1.5f};

// Reference: softmax(l / T), then top-k, top-p, min-p, each renormalizing; computed in double by
// sorting, independently of the sampler's code.
std::vector<double> Target(const std::vector<float>& logits, double t, int top_k, double top_p,
                           double min_p) {
  const size_t n = logits.size();
  std::vector<int> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  std::vector<double> p(n, 0.0);
  for (size_t i = 0; i < n; ++i) p[i] = std::exp(logits[i] / t);
  auto normalize = [&] {
    const double s = std::accumulate(p.begin(), p.end(), 0.0);
    for (double& x : p) x /= s;
  };
  normalize();
  if (top_k > 0) {
    for (size_t r = top_k; r < n; ++r) p[order[r]] = 0;
    normalize();
  }
  if (top_p < 1) {
    double cum = 0;
    size_t r = 0;
    while (r < n && cum < top_p) cum += p[order[r++]];
    for (; r < n; ++r) p[order[r]] = 0;
    normalize();
  }
  if (min_p > 0) {
    const double max = p[order[0]];
    for (double& x : p) {
      if (x < min_p * max) x = 0;
    }
    normalize();
  }
  return p;
}

// Upper 0.1% points of the chi-square distribution, df = 1..9.
double Critical001(int df) {
  static const double kTable[] = {10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88};
  return kTable[df - 1];
}

std::vector<int> Draw(const SamplingParams& params, const std::vector<float>& logits, int n) {
  SequenceSamplingState state(params, {});
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<SampleResult> r = Sample(logits, state);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) break;
    ++counts[r->token];
  }
  return counts;
}

// Chi-square statistic over the support of `expected`; draws outside it fail the test.
double ChiSquare(const std::vector<int>& counts, const std::vector<double>& expected, int n,
                 int* df) {
  double stat = 0;
  int cells = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (expected[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the support";
      continue;
    }
    const double e = expected[i] * n;
    EXPECT_GE(e, 5.0) << "cell too small for the chi-square approximation";
    stat += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  *df = cells - 1;
  return stat;
}

void ExpectFits(const SamplingParams& params, int expected_support) {
  const std::vector<double> target =
      Target(kLogits, params.temperature, params.top_k, params.top_p, params.min_p);
  const std::vector<int> counts = Draw(params, kLogits, kDraws);
  int df = 0;
  const double stat = ChiSquare(counts, target, kDraws, &df);
  ASSERT_EQ(df + 1, expected_support);
  EXPECT_LT(stat, Critical001(df)) << "chi-square " << stat << " with " << df << " df";
}

TEST(SamplerStatisticsTest, TemperatureOne) {
  SamplingParams p;
  p.seed = 20240601;
  ExpectFits(p, 10);
}

TEST(SamplerStatisticsTest, TemperatureScaled) {
  SamplingParams p;
  p.seed = 7;
  p.temperature = 0.7;
  ExpectFits(p, 10);
  // Power check: the same draws do not fit the unscaled distribution.
  const std::vector<int> counts = Draw(p, kLogits, kDraws);
  int df = 0;
  EXPECT_GT(ChiSquare(counts, Target(kLogits, 1.0, 0, 1.0, 0.0), kDraws, &df), 100.0);
}

TEST(SamplerStatisticsTest, TopK) {
  SamplingParams p;
  p.seed = 11;
  p.top_k = 4;
  ExpectFits(p, 4);
}

TEST(SamplerStatisticsTest, TopP) {
  SamplingParams p;
  p.seed = 12;
  p.top_p = 0.7;
  // Sorted probabilities .303 .184 .136 .101 ...: the mass reaches 0.7 at the 4th token.
  ExpectFits(p, 4);
}

TEST(SamplerStatisticsTest, MinP) {
  SamplingParams p;
  p.seed = 13;
  p.min_p = 0.2;  // keeps logits >= 1.5 + ln(0.2) = -0.109: 6 tokens
  ExpectFits(p, 6);
}

TEST(SamplerStatisticsTest, CombinedFilters) {
  SamplingParams p;
  p.seed = 14;
  p.temperature = 1.3;
  p.top_k = 7;
  p.top_p = 0.85;
  p.min_p = 0.3;
  const std::vector<double> t = Target(kLogits, 1.3, 7, 0.85, 0.3);
  const int support =
      static_cast<int>(std::count_if(t.begin(), t.end(), [](double x) { return x > 0; }));
  EXPECT_GE(support, 3);
  ExpectFits(p, support);
}

TEST(SamplerStatisticsTest, LargeVocabUnfiltered) {
  // 10 meaningful tokens inside a 262144-token row whose other logits are -inf-like.
  std::vector<float> row(262144, -1e4f);
  std::vector<int> ids = {0, 17, 5000, 65536, 100001, 150000, 200000, 230000, 262000, 262143};
  for (size_t i = 0; i < ids.size(); ++i) row[ids[i]] = kLogits[i];
  SamplingParams p;
  p.seed = 15;
  SequenceSamplingState state(p, {});
  std::vector<int> counts(10, 0);
  const int n = 1000;
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<SampleResult> r = Sample(row, state);
    ASSERT_TRUE(r.ok());
    const auto it = std::find(ids.begin(), ids.end(), r->token);
    ASSERT_NE(it, ids.end()) << r->token;
    ++counts[it - ids.begin()];
  }
  int df = 0;
  const double stat = ChiSquare(counts, Target(kLogits, 1.0, 0, 1.0, 0.0), n, &df);
  EXPECT_LT(stat, Critical001(df));
}

}  // namespace
}  // namespace g4
