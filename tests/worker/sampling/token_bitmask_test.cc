// The mask step: disallowed logits become -inf, sampling then only picks allowed tokens with
// every setting, and logprob alternatives never include masked tokens.
#include "worker/sampling/token_bitmask.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "worker/sampling/sampler.h"

namespace g4 {
namespace {

TEST(TokenBitmaskTest, MasksClearBitsAndChecksTheWidth) {
  std::vector<float> logits(70, 1.0f);
  std::vector<uint32_t> bits(BitmaskWords(70), 0);
  bits[0] = 0b1010;                 // tokens 1 and 3
  bits[2] = uint32_t{1} << 5;       // token 69
  ASSERT_TRUE(ApplyTokenBitmask(bits, absl::MakeSpan(logits)).ok());
  for (int t = 0; t < 70; ++t) {
    const bool allowed = t == 1 || t == 3 || t == 69;
    EXPECT_EQ(std::isinf(logits[t]), !allowed) << t;
  }
  std::vector<uint32_t> short_bits(2);
  EXPECT_EQ(ApplyTokenBitmask(short_bits, absl::MakeSpan(logits)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TokenBitmaskTest, SamplingAfterTheMaskPicksAllowedTokensOnly) {
  const int vocab = 100;
  std::vector<uint32_t> bits(BitmaskWords(vocab), 0);
  for (int t : {7, 40, 41, 99}) bits[t / 32] |= uint32_t{1} << (t % 32);
  for (int setting = 0; setting < 5; ++setting) {
    SamplingParams p;
    p.temperature = setting == 0 ? 0.0 : 1.3;
    if (setting == 2) p.top_k = 3;
    if (setting == 3) p.top_p = 0.5;
    if (setting == 4) p.min_p = 0.2;
    p.logprobs = 10;
    p.seed = setting;
    SequenceSamplingState state(p, {});
    for (int step = 0; step < 50; ++step) {
      std::vector<float> logits(vocab);
      for (int t = 0; t < vocab; ++t) logits[t] = static_cast<float>((t * 37 + step) % 11);
      ASSERT_TRUE(ApplyTokenBitmask(bits, absl::MakeSpan(logits)).ok());
      auto r = Sample(logits, state);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE((bits[r->token / 32] >> (r->token % 32)) & 1) << r->token;
      ASSERT_TRUE(r->logprob.has_value());
      EXPECT_TRUE(std::isfinite(*r->logprob));
      EXPECT_EQ(r->top_logprobs.size(), 4u);  // only the allowed tokens
      for (const TokenLogprob& alt : r->top_logprobs) EXPECT_TRUE(std::isfinite(alt.logprob));
    }
  }
}

}  // namespace
}  // namespace g4
