// Proto ↔ sampler conversions: optional fields stay unset, checkpoint-independent validation
// names the field, SampleResult → TokenOutput.
#include "worker/sampling/proto_conversion.h"

#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ProtoConversionTest, UnsetFieldsStayUnset) {
  g4serve::v1::SamplingParameters s;
  g4serve::v1::StoppingCriteria st;
  absl::StatusOr<SamplingRequest> r = ToSamplingRequest(s, st);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->temperature.has_value());
  EXPECT_FALSE(r->top_k.has_value());
  EXPECT_FALSE(r->top_p.has_value());
  EXPECT_FALSE(r->min_p.has_value());
  EXPECT_FALSE(r->repetition_penalty.has_value());
  EXPECT_FALSE(r->presence_penalty.has_value());
  EXPECT_FALSE(r->frequency_penalty.has_value());
  EXPECT_FALSE(r->seed.has_value());
  EXPECT_FALSE(r->logprobs.has_value());
  EXPECT_FALSE(r->max_tokens.has_value());
  EXPECT_TRUE(r->stop.empty());
  EXPECT_TRUE(r->stop_token_ids.empty());
  EXPECT_FALSE(r->ignore_eos);
}

TEST(ProtoConversionTest, CopiesEveryField) {
  g4serve::v1::SamplingParameters s;
  s.set_temperature(0.5f);
  s.set_top_k(40);
  s.set_top_p(0.9f);
  s.set_min_p(0.05f);
  s.set_repetition_penalty(1.1f);
  s.set_presence_penalty(0.5f);
  s.set_frequency_penalty(-0.5f);
  s.set_seed(18446744073709551615ull);
  s.set_logprobs(0);  // set to 0: chosen token's logprob, no alternatives
  g4serve::v1::StoppingCriteria st;
  st.set_max_tokens(17);
  st.add_stop("</s>");
  st.add_stop("\n\n");
  st.add_stop_token_ids(7);
  st.add_stop_token_ids(9);
  st.set_ignore_eos(true);
  absl::StatusOr<SamplingRequest> r = ToSamplingRequest(s, st);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(*r->temperature, 0.5);
  EXPECT_EQ(*r->top_k, 40);
  EXPECT_FLOAT_EQ(static_cast<float>(*r->top_p), 0.9f);
  EXPECT_FLOAT_EQ(static_cast<float>(*r->min_p), 0.05f);
  EXPECT_FLOAT_EQ(static_cast<float>(*r->repetition_penalty), 1.1f);
  EXPECT_DOUBLE_EQ(*r->presence_penalty, 0.5);
  EXPECT_DOUBLE_EQ(*r->frequency_penalty, -0.5);
  EXPECT_EQ(*r->seed, 18446744073709551615ull);
  ASSERT_TRUE(r->logprobs.has_value());
  EXPECT_EQ(*r->logprobs, 0);
  EXPECT_EQ(*r->max_tokens, 17);
  EXPECT_THAT(r->stop, ElementsAre("</s>", "\n\n"));
  EXPECT_THAT(r->stop_token_ids, ElementsAre(7, 9));
  EXPECT_TRUE(r->ignore_eos);
}

TEST(ProtoConversionTest, InvalidValuesNameTheField) {
  struct Case {
    std::string field;
    void (*set)(g4serve::v1::SamplingParameters*, g4serve::v1::StoppingCriteria*);
  };
  const Case cases[] = {
      {"temperature", [](auto* s, auto*) { s->set_temperature(-1); }},
      {"top_k", [](auto* s, auto*) { s->set_top_k(-3); }},
      {"top_p", [](auto* s, auto*) { s->set_top_p(0); }},
      {"top_p", [](auto* s, auto*) { s->set_top_p(1.5f); }},
      {"min_p", [](auto* s, auto*) { s->set_min_p(2); }},
      {"repetition_penalty", [](auto* s, auto*) { s->set_repetition_penalty(0); }},
      {"presence_penalty", [](auto* s, auto*) { s->set_presence_penalty(3); }},
      {"frequency_penalty", [](auto* s, auto*) { s->set_frequency_penalty(-3); }},
      {"logprobs", [](auto* s, auto*) { s->set_logprobs(21); }},
      {"max_tokens", [](auto*, auto* st) { st->set_max_tokens(0); }},
      {"stop_token_ids", [](auto*, auto* st) { st->add_stop_token_ids(-1); }},
      {"stop", [](auto*, auto* st) { st->add_stop(""); }},
  };
  for (const Case& c : cases) {
    g4serve::v1::SamplingParameters s;
    g4serve::v1::StoppingCriteria st;
    c.set(&s, &st);
    absl::StatusOr<SamplingRequest> r = ToSamplingRequest(s, st);
    ASSERT_FALSE(r.ok()) << c.field;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(r.status().message(), HasSubstr(c.field));
  }
}

TEST(ProtoConversionTest, NanTemperatureIsRejected) {
  g4serve::v1::SamplingParameters s;
  s.set_temperature(std::numeric_limits<float>::quiet_NaN());
  absl::StatusOr<SamplingRequest> r = ToSamplingRequest(s, {});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("temperature"));
}

TEST(ProtoConversionTest, ResolvesWithCheckpointDefaults) {
  g4serve::v1::StoppingCriteria st;
  st.add_stop_token_ids(5);
  absl::StatusOr<SamplingRequest> r = ToSamplingRequest({}, st);
  ASSERT_TRUE(r.ok());
  GenerationConfig config;  // eos 1, 106, 50; greedy
  absl::StatusOr<SamplingParams> p = ResolveSamplingParams(*r, config, 1000);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->temperature, 0);
  EXPECT_THAT(p->stop_token_ids, ::testing::UnorderedElementsAre(5, 1, 106, 50));
}

TEST(ProtoConversionTest, SampleResultToProto) {
  SampleResult plain;
  plain.token = 42;
  g4serve::v1::TokenOutput out;
  out.set_logprob(3);  // cleared
  ToProto(plain, &out);
  EXPECT_EQ(out.token_id(), 42);
  EXPECT_EQ(out.logprob(), 0);
  EXPECT_EQ(out.top_logprobs_size(), 0);

  SampleResult with;
  with.token = 7;
  with.logprob = -0.25f;
  with.top_logprobs = {{7, -0.25f}, {3, -1.5f}};
  ToProto(with, &out);
  EXPECT_EQ(out.token_id(), 7);
  EXPECT_FLOAT_EQ(out.logprob(), -0.25f);
  ASSERT_EQ(out.top_logprobs_size(), 2);
  EXPECT_EQ(out.top_logprobs(1).token_id(), 3);
  EXPECT_FLOAT_EQ(out.top_logprobs(1).logprob(), -1.5f);
  EXPECT_TRUE(out.top_logprobs(1).token().empty());
}

}  // namespace
}  // namespace g4
