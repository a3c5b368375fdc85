#include "worker/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;

SamplingParams Params() {
  SamplingParams p;  // temperature 1, nothing else, no stop ids
  return p;
}

SamplingParams Greedy() {
  SamplingParams p;
  p.temperature = 0;
  return p;
}

int32_t SampleToken(const std::vector<float>& row, SequenceSamplingState& state) {
  absl::StatusOr<SampleResult> r = Sample(row, state);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? r->token : -1;
}

std::vector<float> RandomLogits(int64_t vocab, uint32_t seed, float scale = 3.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(vocab);
  for (float& x : v) x = dist(gen);
  return v;
}

TEST(SamplerTest, GreedyIsArgmaxWithLowestIdOnTies) {
  SequenceSamplingState state(Greedy(), {});
  EXPECT_EQ(SampleToken({0.1f, 3.0f, -1.0f, 2.0f}, state), 1);
  EXPECT_EQ(SampleToken({0.1f, 3.0f, -1.0f, 3.0f, 3.0f}, state), 1);
  EXPECT_EQ(SampleToken({5.0f, 5.0f}, state), 0);
  EXPECT_EQ(state.num_output_tokens(), 3);
  EXPECT_THAT(state.output_token_ids(), ElementsAre(1, 1, 0));
}

TEST(SamplerTest, GreedyLargeVocab) {
  std::vector<float> row = RandomLogits(262144, 1);
  row[200000] = 100.0f;
  SequenceSamplingState state(Greedy(), {});
  EXPECT_EQ(SampleToken(row, state), 200000);
}

TEST(SamplerTest, LowTemperatureApproachesGreedy) {
  SamplingParams p;
  p.temperature = 1e-6;
  p.seed = 3;
  SequenceSamplingState state(p, {});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(SampleToken({0.0f, 1.0f, 0.99f}, state), 1);
}

// Reads back the processed logits through processed logprobs (all tokens, greedy).
std::vector<double> ProcessedLogits(const std::vector<float>& row, SequenceSamplingState& state) {
  absl::StatusOr<SampleResult> r = Sample(row, state);
  EXPECT_TRUE(r.ok()) << r.status();
  std::vector<double> out(row.size(), std::nan(""));
  if (!r.ok()) return out;
  EXPECT_EQ(r->top_logprobs.size(), row.size());
  for (const TokenLogprob& t : r->top_logprobs) out[t.token] = t.logprob;
  // Logprobs are the processed logits minus a constant: callers compare differences.
  return out;
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p = Greedy();
  p.repetition_penalty = 2.0;
  p.logprobs = 5;
  p.logprobs_mode = LogprobsMode::kProcessed;
  const std::vector<int32_t> prompt = {0, 1, 1};
  SequenceSamplingState state(p, prompt);
  const std::vector<float> row = {3.0f, -1.0f, 0.5f, 1.2f, 0.0f};
  // Penalized: {1.5, -2, 0.5, 1.2, 0}; argmax 0.
  const std::vector<double> lp = ProcessedLogits(row, state);
  EXPECT_NEAR(lp[0] - lp[4], 1.5, 1e-5);
  EXPECT_NEAR(lp[1] - lp[4], -2.0, 1e-5);
  EXPECT_NEAR(lp[2] - lp[4], 0.5, 1e-5);
  EXPECT_NEAR(lp[3] - lp[4], 1.2, 1e-5);
  EXPECT_EQ(state.output_token_ids().back(), 0);
  // Token 0 was generated and is in the prompt: penalized once, not twice. Token 3 now only
  // appears in the output after we append it.
  state.AppendOutputToken(3);
  const std::vector<double> lp2 = ProcessedLogits(row, state);
  EXPECT_NEAR(lp2[0] - lp2[4], 1.5, 1e-5);
  EXPECT_NEAR(lp2[3] - lp2[4], 0.6, 1e-5);
}

TEST(SamplerTest, PresenceAndFrequencyPenaltiesUseOutputCounts) {
  SamplingParams p = Greedy();
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  p.logprobs = 4;
  p.logprobs_mode = LogprobsMode::kProcessed;
  const std::vector<int32_t> prompt = {3};  // the prompt does not count
  SequenceSamplingState state(p, prompt);
  state.AppendOutputToken(1);
  state.AppendOutputToken(1);
  state.AppendOutputToken(2);
  const std::vector<float> row = {2.0f, 2.0f, 2.0f, 2.0f};
  // token 1: 2 - 0.5 - 2*0.25 = 1; token 2: 2 - 0.5 - 0.25 = 1.25; tokens 0, 3: 2.
  const std::vector<double> lp = ProcessedLogits(row, state);
  EXPECT_NEAR(lp[0] - lp[3], 0.0, 1e-6);
  EXPECT_NEAR(lp[1] - lp[3], -1.0, 1e-6);
  EXPECT_NEAR(lp[2] - lp[3], -0.75, 1e-6);
  EXPECT_EQ(state.output_token_ids().back(), 0);
}

TEST(SamplerTest, NegativePresencePenaltyEncouragesRepeats) {
  SamplingParams p = Greedy();
  p.presence_penalty = -2.0;
  SequenceSamplingState state(p, {});
  state.AppendOutputToken(2);
  EXPECT_EQ(SampleToken({1.0f, 0.0f, -0.5f}, state), 2);
}

TEST(SamplerTest, ProcessedLogprobsIncludeTemperature) {
  SamplingParams p;
  p.temperature = 0.5;
  p.seed = 1;
  p.logprobs = 3;
  p.logprobs_mode = LogprobsMode::kProcessed;
  SequenceSamplingState state(p, {});
  const std::vector<float> row = {1.0f, 0.0f, -1.0f};
  absl::StatusOr<SampleResult> r = Sample(row, state);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->top_logprobs.size(), 3u);
  const double z = std::log(std::exp(2.0) + std::exp(0.0) + std::exp(-2.0));
  EXPECT_NEAR(r->top_logprobs[0].logprob, 2.0 - z, 1e-5);
  EXPECT_NEAR(r->top_logprobs[2].logprob, -2.0 - z, 1e-5);
}

TEST(SamplerTest, RawLogprobsAreLogSoftmaxOfTheRow) {
  const std::vector<float> row = RandomLogits(1000, 7);
  double max = -1e30;
  for (float x : row) max = std::max<double>(max, x);
  double sum = 0;
  for (float x : row) sum += std::exp(x - max);
  const double lse = max + std::log(sum);

  SamplingParams p;
  p.temperature = 0.8;
  p.top_k = 50;
  p.repetition_penalty = 1.3;  // raw logprobs ignore processing
  p.seed = 11;
  p.logprobs = 5;
  const std::vector<int32_t> prompt = {1, 2, 3};
  SequenceSamplingState state(p, prompt);
  absl::StatusOr<SampleResult> r = Sample(row, state);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->logprob.has_value());
  EXPECT_NEAR(*r->logprob, row[r->token] - lse, 1e-4);
  int64_t better = 0;
  for (float x : row) better += x > row[r->token];
  EXPECT_EQ(r->rank, better + 1);
  ASSERT_EQ(r->top_logprobs.size(), 5u);
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(r->top_logprobs[i].token, order[i]);
    EXPECT_NEAR(r->top_logprobs[i].logprob, row[order[i]] - lse, 1e-4);
    if (i > 0) {
      EXPECT_GE(r->top_logprobs[i - 1].logprob, r->top_logprobs[i].logprob);
    }
  }
}

TEST(SamplerTest, LogprobsTiesSortByIdAndZeroMeansChosenOnly) {
  SamplingParams p = Greedy();
  p.logprobs = 3;
  SequenceSamplingState state(p, {});
  absl::StatusOr<SampleResult> r = Sample(std::vector<float>{0.0f, 1.0f, 0.0f, 1.0f}, state);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, 1);
  ASSERT_EQ(r->top_logprobs.size(), 3u);
  EXPECT_EQ(r->top_logprobs[0].token, 1);
  EXPECT_EQ(r->top_logprobs[1].token, 3);
  EXPECT_EQ(r->top_logprobs[2].token, 0);
  EXPECT_EQ(r->rank, 1);

  SamplingParams q = Greedy();
  q.logprobs = 0;
  SequenceSamplingState s2(q, {});
  r = Sample(std::vector<float>{0.0f, 0.0f}, s2);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(*r->logprob, std::log(0.5), 1e-6);
  EXPECT_TRUE(r->top_logprobs.empty());

  SequenceSamplingState s3(Greedy(), {});
  r = Sample(std::vector<float>{0.0f, 0.0f}, s3);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->logprob.has_value());
}

TEST(SamplerTest, SeededSequencesAreReproducible) {
  const std::vector<float> row = RandomLogits(5000, 3, 1.0f);
  SamplingParams p;
  p.seed = 1234;
  p.top_p = 0.9;
  SequenceSamplingState a(p, {}), b(p, {});
  std::vector<int32_t> ta, tb;
  for (int i = 0; i < 100; ++i) {
    ta.push_back(SampleToken(row, a));
    tb.push_back(SampleToken(row, b));
  }
  EXPECT_EQ(ta, tb);
  // Not constant: the draws differ across steps.
  EXPECT_GT(std::set<int32_t>(ta.begin(), ta.end()).size(), 10u);

  p.seed = 1235;
  SequenceSamplingState c(p, {});
  std::vector<int32_t> tc;
  for (int i = 0; i < 100; ++i) tc.push_back(SampleToken(row, c));
  EXPECT_NE(ta, tc);
}

TEST(SamplerTest, SeedStreamIsAFixedFunctionOfSeedAndStep) {
  // Pinned values: changing the RNG would silently change every seeded request's output.
  SamplingParams p;
  p.seed = 42;
  SequenceSamplingState s(p, {});
  const double u0 = s.UniformForStep(0), u1 = s.UniformForStep(1);
  EXPECT_GE(u0, 0.0);
  EXPECT_LT(u0, 1.0);
  EXPECT_NE(u0, u1);
  SequenceSamplingState t(p, {});
  EXPECT_EQ(t.UniformForStep(0), u0);
  EXPECT_EQ(t.UniformForStep(1000), s.UniformForStep(1000));
}

TEST(SamplerTest, UnseededSequencesGetDistinctSeeds) {
  SequenceSamplingState a(Params(), {}), b(Params(), {});
  EXPECT_NE(a.seed(), b.seed());
}

TEST(SamplerTest, BatchResultsIndependentOfBatchComposition) {
  const int64_t vocab = 3000;
  std::vector<std::vector<float>> rows;
  for (uint32_t r = 0; r < 4; ++r) rows.push_back(RandomLogits(vocab, 100 + r, 2.0f));
  std::vector<SamplingParams> params(4);
  params[0].seed = 1;
  params[1].seed = 2;
  params[1].top_k = 20;
  params[2].seed = 3;
  params[2].top_p = 0.8;
  params[2].logprobs = 3;
  params[3].seed = 4;
  params[3].min_p = 0.05;
  params[3].temperature = 1.5;

  // Alone, one row at a time.
  std::vector<std::vector<int32_t>> alone(4);
  for (int r = 0; r < 4; ++r) {
    SequenceSamplingState s(params[r], {});
    for (int step = 0; step < 20; ++step) alone[r].push_back(SampleToken(rows[r], s));
  }
  // Batched, in reverse order with an unseeded extra sequence in the middle.
  std::vector<SequenceSamplingState> states;
  states.reserve(5);
  for (int r = 3; r >= 2; --r) states.emplace_back(params[r], std::vector<int32_t>{});
  states.emplace_back(Params(), std::vector<int32_t>{});
  for (int r = 1; r >= 0; --r) states.emplace_back(params[r], std::vector<int32_t>{});
  const int order[5] = {3, 2, -1, 1, 0};
  std::vector<SequenceSamplingState*> ptrs;
  for (auto& s : states) ptrs.push_back(&s);
  std::vector<float> batch;
  const std::vector<float> extra = RandomLogits(vocab, 999);
  for (int i = 0; i < 5; ++i) {
    const auto& row = order[i] < 0 ? extra : rows[order[i]];
    batch.insert(batch.end(), row.begin(), row.end());
  }
  std::vector<std::vector<int32_t>> batched(4);
  for (int step = 0; step < 20; ++step) {
    absl::StatusOr<std::vector<SampleResult>> results = SampleBatch(batch, vocab, ptrs);
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->size(), 5u);
    for (int i = 0; i < 5; ++i) {
      if (order[i] >= 0) batched[order[i]].push_back((*results)[i].token);
    }
  }
  EXPECT_EQ(batched, alone);
}

TEST(SamplerTest, BatchErrorsLeaveStatesUnchanged) {
  SequenceSamplingState a(Greedy(), {}), b(Greedy(), {});
  std::vector<SequenceSamplingState*> ptrs = {&a, &b};
  std::vector<float> batch = {1.0f, 0.0f, std::nanf(""), 0.0f};
  EXPECT_EQ(SampleBatch(batch, 2, ptrs).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a.num_output_tokens(), 0);
  EXPECT_EQ(SampleBatch(batch, 3, ptrs).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<SequenceSamplingState*> twice = {&a, &a};
  EXPECT_EQ(SampleBatch({1.0f, 0.0f, 1.0f, 0.0f}, 2, twice).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SamplerTest, StopTokensAndMaxTokens) {
  SamplingParams p = Greedy();
  p.stop_token_ids = {1, 106, 50};
  p.max_tokens = 3;
  SequenceSamplingState s(p, {});
  std::vector<float> row(200, 0.0f);
  row[7] = 5.0f;
  absl::StatusOr<SampleResult> r = Sample(row, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->finish_reason, FinishReason::kNone);
  row[106] = 10.0f;
  r = Sample(row, s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->token, 106);
  EXPECT_EQ(r->finish_reason, FinishReason::kStopToken);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(Sample(row, s).status().code(), absl::StatusCode::kFailedPrecondition);

  SequenceSamplingState t(p, {});
  row[106] = 0.0f;
  for (int i = 0; i < 3; ++i) {
    r = Sample(row, t);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->finish_reason, i == 2 ? FinishReason::kLength : FinishReason::kNone);
  }
}

TEST(SamplerTest, MinTokensMasksStopTokens) {
  SamplingParams p = Greedy();
  p.stop_token_ids = {1};
  p.min_tokens = 2;
  SequenceSamplingState s(p, {});
  const std::vector<float> row = {0.0f, 9.0f, 1.0f};
  EXPECT_EQ(SampleToken(row, s), 2);
  EXPECT_EQ(SampleToken(row, s), 2);
  EXPECT_EQ(SampleToken(row, s), 1);
  EXPECT_EQ(s.finish_reason(), FinishReason::kStopToken);
}

TEST(SamplerTest, Errors) {
  SequenceSamplingState s(Params(), {});
  EXPECT_EQ(Sample({}, s).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sample(std::vector<float>{0.0f, std::nanf("")}, s).status().code(),
            absl::StatusCode::kInvalidArgument);
  const float ninf = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(Sample(std::vector<float>{ninf, ninf}, s).status().code(),
            absl::StatusCode::kFailedPrecondition);
  SamplingParams p = Params();
  p.repetition_penalty = 1.1;
  const std::vector<int32_t> prompt = {5};
  SequenceSamplingState t(p, prompt);
  EXPECT_EQ(Sample(std::vector<float>{0.0f, 1.0f}, t).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(t.num_output_tokens(), 0);
}

TEST(SamplerTest, NeverPicksMaskedToken) {
  const float ninf = -std::numeric_limits<float>::infinity();
  SamplingParams p;
  p.seed = 5;
  SequenceSamplingState s(p, {});
  for (int i = 0; i < 200; ++i) {
    const int32_t t = SampleToken({ninf, 0.0f, ninf, 0.0f, ninf}, s);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
}

// Found by tests/fuzz/sampling_proto_fuzz.cc: a denormal repetition penalty made penalized
// logits infinite, the weights NaN, and min-p then left no candidate (an out-of-bounds read);
// a denormal temperature did the same through 0 * inf. Every draw now yields a valid token.
TEST(SamplerTest, ExtremeParametersStillPickAToken) {
  std::vector<float> row(64);
  for (int i = 0; i < 64; ++i) row[i] = std::sin(static_cast<float>(i)) * 4.0f;
  SamplingParams p;
  p.seed = 42;
  p.temperature = 2.35534e+38;
  p.min_p = 0.05;
  p.repetition_penalty = 5.76726944e-39;
  p.presence_penalty = 0.5;
  p.frequency_penalty = 0.25;
  SequenceSamplingState s(p, {1, 2, 3, 2});
  for (int i = 0; i < 4; ++i) {
    const int32_t t = SampleToken(row, s);
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 64);
  }
  SamplingParams tiny_t;
  tiny_t.seed = 1;
  tiny_t.temperature = 1e-45;
  tiny_t.min_p = 0.5;
  SequenceSamplingState s2(tiny_t, {});
  EXPECT_EQ(SampleToken(row, s2), std::max_element(row.begin(), row.end()) - row.begin());
}

TEST(SamplerTest, LargeVocabTopKTopP) {
  const std::vector<float> row = RandomLogits(262144, 9, 2.0f);
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  SamplingParams p;
  p.seed = 8;
  p.top_k = 64;
  p.top_p = 0.95;
  SequenceSamplingState s(p, {});
  const std::set<int32_t> top64(order.begin(), order.begin() + 64);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(top64.count(SampleToken(row, s)));

  // Top-p alone on a flat-ish distribution: the candidate prefix has to grow several times.
  SamplingParams q;
  q.seed = 9;
  q.top_p = 0.5;
  q.temperature = 4.0;
  SequenceSamplingState t(q, {});
  double total = 0;
  for (float x : row) total += std::exp((x - row[order[0]]) / 4.0);
  double cum = 0;
  size_t keep = 0;
  while (cum < 0.5 * total) cum += std::exp((row[order[keep++]] - row[order[0]]) / 4.0);
  ASSERT_GT(keep, 1024u);
  const std::set<int32_t> nucleus(order.begin(), order.begin() + keep);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(nucleus.count(SampleToken(row, t)));
}

}  // namespace
}  // namespace g4
