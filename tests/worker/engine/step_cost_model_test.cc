#include "worker/engine/step_cost_model.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace g4 {
namespace {

ModelConfig LongConfig() {
  std::ifstream in("tests/data/golden/long/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<ModelConfig> c = ParseModelConfig(ss.str());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ModelConfig{};
}

TEST(StepCostModelTest, DefaultCostsTokensOnly) {
  StepCostModel m;
  EXPECT_FALSE(m.enabled());
  EXPECT_EQ(m.ChunkCost(100000, 64), 64);
  EXPECT_EQ(m.MaxLenWithin(100000, 5000, 2048), 2048);
}

TEST(StepCostModelTest, CountsCausalPairsAndTheSlidingWindow) {
  StepCostModel m;
  m.global_per_pair = 0.5;
  m.sliding_per_pair = 0.25;
  m.sliding_window = 4;
  // Positions 0..2 see 1, 2, 3 keys (global and sliding alike, inside the window).
  EXPECT_DOUBLE_EQ(m.ChunkCost(0, 3), 3 + 0.5 * 6 + 0.25 * 6);
  // Positions 10..11: global sees 11 and 12 keys, sliding 4 and 4.
  EXPECT_DOUBLE_EQ(m.ChunkCost(10, 2), 2 + 0.5 * 23 + 0.25 * 8);
  // Split chunks cost what the whole does.
  EXPECT_DOUBLE_EQ(m.ChunkCost(0, 7) + m.ChunkCost(7, 5), m.ChunkCost(0, 12));
  EXPECT_EQ(m.MaxLenWithin(0, 100, m.ChunkCost(0, 9)), 9);
  EXPECT_EQ(m.MaxLenWithin(1000, 100, 0.5), 0);  // not even one token
}

TEST(StepCostModelTest, AnalyticModelShrinksChunksDeepIntoALongPrompt) {
  const StepCostModel m = StepCostModel::FromConfig(LongConfig());
  ASSERT_TRUE(m.enabled());
  EXPECT_EQ(m.sliding_window, 1024);
  // One global layer (2 heads, head_dim 32) against the whole model's per-token linear work.
  EXPECT_GT(m.global_per_pair, 0);
  EXPECT_GT(m.sliding_per_pair, 0);
  // A budget of 2048 token-equivalents: at the start of a prompt most of a 2048-token chunk fits;
  // 30 000 tokens in, a small fraction of it.
  const int64_t early = m.MaxLenWithin(0, 2048, 2048);
  const int64_t late = m.MaxLenWithin(30000, 2048, 2048);
  EXPECT_GT(early, 100);
  EXPECT_LT(late, early / 4);
  EXPECT_GE(late, 1);
  // attention_scale 0.5 halves the pair costs.
  const StepCostModel half = StepCostModel::FromConfig(LongConfig(), 0.5);
  EXPECT_DOUBLE_EQ(half.global_per_pair, m.global_per_pair / 2);
}

TEST(StepTimeEstimatorTest, FitsTheFixedOverheadInCostUnits) {
  StepTimeEstimator e;
  EXPECT_EQ(e.OverheadCost(), 0);
  for (int i = 0; i < 20; ++i) e.Observe(16, 0.03 + 16e-5);  // decodes only: no slope yet
  EXPECT_EQ(e.OverheadCost(), 0);
  for (int i = 0; i < 20; ++i) {
    const double cost = i % 2 == 0 ? 16 : 2000;
    e.Observe(cost, 0.03 + cost * 1e-5);  // 30 ms per step + 10 us per token-equivalent
  }
  EXPECT_NEAR(e.OverheadCost(), 3000, 1);
  e.Observe(-1, 1);  // ignored
  EXPECT_NEAR(e.OverheadCost(), 3000, 1);
}

// The scheduler picks prefill steps' costs from the estimate, so during a long prefill nearly
// every step costs the same. The decode-only steps seen before keep anchoring the fit: the
// estimate stays put instead of drifting with the costs it chose.
TEST(StepTimeEstimatorTest, KeepsTheFitWhileEveryStepCostsTheSame) {
  StepTimeEstimator e;
  auto time = [](double cost) { return 0.027 + cost * 35e-6; };  // 27 ms + 35 us per unit
  const double truth = 0.027 / 35e-6;
  for (int i = 0; i < 30; ++i) e.Observe(20, time(20));     // decodes
  for (int i = 0; i < 5; ++i) e.Observe(1500, time(1500));  // the first prefill steps
  EXPECT_NEAR(e.OverheadCost(), truth, 1);
  // 1 000 steps of a long prefill, each at overhead + decodes, with 10 % noise.
  for (int i = 0; i < 1000; ++i) {
    const double cost = truth + 20;
    e.Observe(cost, time(cost) * (i % 2 == 0 ? 1.1 : 0.9));
  }
  EXPECT_NEAR(e.OverheadCost(), truth, 0.1 * truth);
}

// A step that took far longer than its class's others (a machine hiccup) counts as at most
// kOutlierFactor times their mean.
TEST(StepTimeEstimatorTest, AHiccupMovesTheEstimateLittle) {
  StepTimeEstimator e;
  auto time = [](double cost) { return 0.027 + cost * 35e-6; };
  for (int i = 0; i < 10; ++i) {
    e.Observe(20, time(20));
    e.Observe(1000, time(1000));
  }
  const double before = e.OverheadCost();
  e.Observe(1000, 2.4);  // 2.4 s instead of 62 ms
  EXPECT_GT(e.OverheadCost(), 0);
  EXPECT_NEAR(e.OverheadCost(), before, 0.5 * before);
}

}  // namespace
}  // namespace g4
