#include "worker/sampling/sampling_params.h"

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kVocab = 262144;

TEST(ApplyDefaultsTest, GreedyWhenConfigDoesNotSample) {
  GenerationConfig config;  // do_sample = false
  config.temperature = 0.7;
  config.top_k = 64;
  const SamplingParams p = ApplyDefaults(SamplingRequest{}, config);
  EXPECT_EQ(p.temperature, 0.0);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.top_p, 1.0);
  EXPECT_EQ(p.min_p, 0.0);
  EXPECT_EQ(p.repetition_penalty, 1.0);
  EXPECT_EQ(p.presence_penalty, 0.0);
  EXPECT_EQ(p.frequency_penalty, 0.0);
  EXPECT_FALSE(p.seed.has_value());
  EXPECT_FALSE(p.logprobs.has_value());
  EXPECT_FALSE(p.max_tokens.has_value());
  EXPECT_EQ(p.min_tokens, 0);
  EXPECT_THAT(p.stop_token_ids, ElementsAre(1, 106, 50));
}

TEST(ApplyDefaultsTest, SamplingDefaultsFromConfig) {
  GenerationConfig config;
  config.do_sample = true;
  config.temperature = 1.0;
  config.top_k = 64;
  config.top_p = 0.95;
  SamplingParams p = ApplyDefaults(SamplingRequest{}, config);
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_EQ(p.top_k, 64);
  EXPECT_EQ(p.top_p, 0.95);

  config.temperature.reset();
  config.top_k.reset();
  config.top_p.reset();
  p = ApplyDefaults(SamplingRequest{}, config);
  EXPECT_EQ(p.temperature, 1.0);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.top_p, 1.0);
}

TEST(ApplyDefaultsTest, RequestOverridesConfig) {
  GenerationConfig config;
  config.do_sample = true;
  config.temperature = 1.0;
  config.top_k = 64;
  config.top_p = 0.95;
  SamplingRequest r;
  r.temperature = 0.0;
  r.top_k = 5;
  r.top_p = 0.5;
  r.min_p = 0.1;
  r.seed = 42;
  r.logprobs = 3;
  r.max_tokens = 10;
  r.min_tokens = 2;
  r.stop_token_ids = {7, 106};
  r.stop = {"###"};
  const SamplingParams p = ApplyDefaults(r, config);
  EXPECT_EQ(p.temperature, 0.0);
  EXPECT_EQ(p.top_k, 5);
  EXPECT_EQ(p.top_p, 0.5);
  EXPECT_EQ(p.min_p, 0.1);
  EXPECT_EQ(p.seed, 42u);
  EXPECT_EQ(p.logprobs, 3);
  EXPECT_EQ(p.max_tokens, 10);
  EXPECT_EQ(p.min_tokens, 2);
  EXPECT_THAT(p.stop_token_ids, ElementsAre(7, 106, 1, 50));
  EXPECT_THAT(p.stop, ElementsAre("###"));
}

TEST(ApplyDefaultsTest, IgnoreEosKeepsOnlyRequestStopIds) {
  SamplingRequest r;
  r.ignore_eos = true;
  r.stop_token_ids = {9};
  EXPECT_THAT(ApplyDefaults(r, GenerationConfig{}).stop_token_ids, ElementsAre(9));
}

TEST(ValidateTest, DefaultsAreValid) {
  EXPECT_TRUE(Validate(SamplingParams{}, kVocab).ok());
  EXPECT_TRUE(ResolveSamplingParams(SamplingRequest{}, GenerationConfig{}, kVocab).ok());
}

TEST(ValidateTest, BoundaryValuesAreValid) {
  SamplingParams p;
  p.temperature = 0;
  p.top_p = 1;
  p.min_p = 1;
  p.presence_penalty = -2;
  p.frequency_penalty = 2;
  p.logprobs = 20;
  p.max_tokens = 1;
  p.min_tokens = 1;
  p.top_k = kVocab + 5;
  p.stop_token_ids = {0, kVocab - 1};
  EXPECT_TRUE(Validate(p, kVocab).ok());
  p.logprobs = 0;
  p.top_p = 1e-9;
  p.min_tokens = 0;
  EXPECT_TRUE(Validate(p, kVocab).ok());
}

struct InvalidCase {
  std::string field;
  std::function<void(SamplingParams&)> mutate;
};

TEST(ValidateTest, ErrorsNameTheField) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  const std::vector<InvalidCase> cases = {
      {"temperature", [](SamplingParams& p) { p.temperature = -0.1; }},
      {"temperature", [nan](SamplingParams& p) { p.temperature = nan; }},
      {"temperature", [inf](SamplingParams& p) { p.temperature = inf; }},
      {"top_k", [](SamplingParams& p) { p.top_k = -1; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 0; }},
      {"top_p", [](SamplingParams& p) { p.top_p = 1.5; }},
      {"top_p", [nan](SamplingParams& p) { p.top_p = nan; }},
      {"min_p", [](SamplingParams& p) { p.min_p = -0.01; }},
      {"min_p", [](SamplingParams& p) { p.min_p = 1.01; }},
      {"repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0; }},
      {"repetition_penalty", [inf](SamplingParams& p) { p.repetition_penalty = inf; }},
      {"presence_penalty", [](SamplingParams& p) { p.presence_penalty = 2.5; }},
      {"presence_penalty", [nan](SamplingParams& p) { p.presence_penalty = nan; }},
      {"frequency_penalty", [](SamplingParams& p) { p.frequency_penalty = -2.01; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = -1; }},
      {"logprobs", [](SamplingParams& p) { p.logprobs = 21; }},
      {"max_tokens", [](SamplingParams& p) { p.max_tokens = 0; }},
      {"min_tokens", [](SamplingParams& p) { p.min_tokens = -1; }},
      {"min_tokens",
       [](SamplingParams& p) {
         p.max_tokens = 3;
         p.min_tokens = 4;
       }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {kVocab}; }},
      {"stop_token_ids", [](SamplingParams& p) { p.stop_token_ids = {-1}; }},
      {"stop",
       [](SamplingParams& p) {
         p.stop = {"ok", ""};
       }},
  };
  for (const InvalidCase& c : cases) {
    SamplingParams p;
    c.mutate(p);
    const absl::Status status = Validate(p, kVocab);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(status.message()), StartsWith(c.field)) << status;
  }
}

TEST(ValidateTest, MessageShowsValue) {
  SamplingParams p;
  p.top_p = 1.5;
  EXPECT_THAT(std::string(Validate(p, kVocab).message()), HasSubstr("1.5"));
}

TEST(ResolveTest, ValidatesAfterDefaults) {
  SamplingRequest r;
  r.temperature = -1;
  const auto p = ResolveSamplingParams(r, GenerationConfig{}, kVocab);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), StartsWith("temperature"));
}

}  // namespace
}  // namespace g4
