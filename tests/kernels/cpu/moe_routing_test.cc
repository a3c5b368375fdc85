// Tests of kernels/cpu/moe_routing.cc (RouteTopK) against a naive double-precision reference:
// softmax over all experts, top-k (descending probability, ties to the lower index),
// renormalized to sum 1, times per_expert_scale.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;

std::vector<float> RandomVector(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

struct Routing {
  std::vector<int32_t> experts;
  std::vector<double> weights;
};

Routing NaiveRouteTopK(const std::vector<float>& logits, const std::vector<float>& scale,
                       int64_t tokens, int num_experts, int k) {
  Routing r;
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> p(num_experts);
    double mx = logits[t * num_experts];
    for (int e = 0; e < num_experts; ++e) mx = std::max<double>(mx, logits[t * num_experts + e]);
    double sum = 0.0;
    for (int e = 0; e < num_experts; ++e) {
      p[e] = std::exp(static_cast<double>(logits[t * num_experts + e]) - mx);
      sum += p[e];
    }
    for (double& x : p) x /= sum;
    std::vector<int> order(num_experts);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double top = 0.0;
    for (int j = 0; j < k; ++j) top += p[order[j]];
    for (int j = 0; j < k; ++j) {
      r.experts.push_back(order[j]);
      r.weights.push_back(p[order[j]] / top * scale[order[j]]);
    }
  }
  return r;
}

void CheckRouting(int64_t tokens, int num_experts, int k, uint32_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "tokens=" << tokens << " experts=" << num_experts << " k=" << k);
  std::mt19937 rng(seed);
  const std::vector<float> logits = RandomVector(rng, tokens * num_experts, -4.0f, 4.0f);
  const std::vector<float> scale = RandomVector(rng, num_experts, 0.5f, 2.0f);
  std::vector<int32_t> experts(tokens * k, -1);
  std::vector<float> weights(tokens * k, -1.0f);
  cpu::RouteTopK(experts.data(), weights.data(), logits.data(), scale.data(), tokens, num_experts,
                 k);
  const Routing want = NaiveRouteTopK(logits, scale, tokens, num_experts, k);
  for (int64_t t = 0; t < tokens; ++t) {
    double unscaled_sum = 0.0;
    for (int j = 0; j < k; ++j) {
      const int64_t i = t * k + j;
      ASSERT_EQ(experts[i], want.experts[i]) << "token " << t << " slot " << j;
      EXPECT_NEAR(weights[i], want.weights[i], 1e-5 * want.weights[i]) << "token " << t;
      unscaled_sum += weights[i] / scale[experts[i]];
      if (j > 0) {  // Descending probability.
        EXPECT_GT(logits[t * num_experts + experts[i - 1]], logits[t * num_experts + experts[i]]);
      }
    }
    EXPECT_NEAR(unscaled_sum, 1.0, 1e-5) << "token " << t;
  }
}

TEST(RouteTopKTest, MatchesNaiveSmall) { CheckRouting(/*tokens=*/5, /*experts=*/8, /*k=*/2, 51); }

TEST(RouteTopKTest, MatchesNaiveGemma4Sized) {
  CheckRouting(/*tokens=*/17, /*experts=*/128, /*k=*/8, 52);
}

TEST(RouteTopKTest, KEqualsOneAndKEqualsAll) {
  CheckRouting(/*tokens=*/4, /*experts=*/16, /*k=*/1, 53);
  CheckRouting(/*tokens=*/4, /*experts=*/6, /*k=*/6, 54);
}

// With unit scales the weights are the renormalized top-k probabilities: they sum to 1.
TEST(RouteTopKTest, UnitScaleWeightsSumToOne) {
  std::mt19937 rng(55);
  const int64_t tokens = 9;
  const int num_experts = 32, k = 4;
  const std::vector<float> logits = RandomVector(rng, tokens * num_experts, -8.0f, 8.0f);
  const std::vector<float> scale(num_experts, 1.0f);
  std::vector<int32_t> experts(tokens * k);
  std::vector<float> weights(tokens * k);
  CreateCpuOps()->RouteTopK(experts.data(), weights.data(), logits.data(), scale.data(), tokens,
                            num_experts, k);
  for (int64_t t = 0; t < tokens; ++t) {
    double sum = 0.0;
    for (int j = 0; j < k; ++j) {
      sum += weights[t * k + j];
      if (j > 0) {
        EXPECT_GE(weights[t * k + j - 1], weights[t * k + j]);
      }
    }
    EXPECT_NEAR(sum, 1.0, 1e-6) << "token " << t;
  }
}

// Softmax over all experts, not over the chosen k: the scale multiplies after renormalization.
// Hand-checked: logits {ln 4, ln 3, ln 2, ln 1}, k = 2: probabilities 0.4, 0.3 → 4/7, 3/7.
TEST(RouteTopKTest, HandCheckedWeights) {
  const std::vector<float> logits = {std::log(2.0f), std::log(4.0f), std::log(1.0f),
                                     std::log(3.0f)};
  const std::vector<float> scale = {1.0f, 2.0f, 1.0f, 0.5f};
  std::vector<int32_t> experts(2);
  std::vector<float> weights(2);
  cpu::RouteTopK(experts.data(), weights.data(), logits.data(), scale.data(), 1, 4, 2);
  EXPECT_THAT(experts, ElementsAre(1, 3));
  EXPECT_NEAR(weights[0], 4.0 / 7.0 * 2.0, 1e-6);
  EXPECT_NEAR(weights[1], 3.0 / 7.0 * 0.5, 1e-6);
}

// Exact ties pick the lower expert index first, including across the top-k boundary.
TEST(RouteTopKTest, TiesPickLowerIndexFirst) {
  const int num_experts = 6, k = 3;
  const std::vector<float> logits = {
      0.5f, 2.0f, 1.0f, 2.0f, 1.0f, 1.0f,  // 1 and 3 tie for first; 2, 4, 5 tie for third
      3.0f, 3.0f, 3.0f, 3.0f, 3.0f, 3.0f,  // all equal
  };
  const std::vector<float> scale(num_experts, 1.0f);
  std::vector<int32_t> experts(2 * k);
  std::vector<float> weights(2 * k);
  cpu::RouteTopK(experts.data(), weights.data(), logits.data(), scale.data(), 2, num_experts, k);
  EXPECT_THAT(experts, ElementsAre(1, 3, 2, 0, 1, 2));
  EXPECT_EQ(weights[0], weights[1]);
  EXPECT_GT(weights[1], weights[2]);
  const double e = std::exp(1.0);  // p(2.0) / p(1.0)
  EXPECT_NEAR(weights[0], e / (2 * e + 1), 1e-6);
  EXPECT_NEAR(weights[2], 1 / (2 * e + 1), 1e-6);
  for (int j = 0; j < k; ++j) EXPECT_NEAR(weights[k + j], 1.0 / 3.0, 1e-6);
}

// Large logits: the softmax subtracts the max, so nothing overflows.
TEST(RouteTopKTest, LargeLogitsAreStable) {
  const std::vector<float> logits = {1000.0f, 999.0f, -1000.0f, 998.0f};
  const std::vector<float> scale(4, 1.0f);
  std::vector<int32_t> experts(2);
  std::vector<float> weights(2);
  cpu::RouteTopK(experts.data(), weights.data(), logits.data(), scale.data(), 1, 4, 2);
  EXPECT_THAT(experts, ElementsAre(0, 1));
  const double e = std::exp(1.0);
  EXPECT_NEAR(weights[0], e / (e + 1), 1e-6);
  EXPECT_NEAR(weights[1], 1 / (e + 1), 1e-6);
}

}  // namespace
}  // namespace g4
