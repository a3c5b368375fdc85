// Gemma4Model input validation and RoPE tables (numerics are covered by gemma4_golden_test).
#include "worker/model/gemma4_model.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

class ModelInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = Gemma4Model::Load("tests/data/golden/dense", CreateCpuOps());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
  }
  std::unique_ptr<Gemma4Model> model_;
};

TEST_F(ModelInputTest, RejectsOutOfRangeTokenWithoutTouchingTheCache) {
  auto seq = model_->NewSequence();
  const std::vector<int32_t> tokens = {2, 5, 512};
  SequenceChunk chunk{seq.get(), tokens};
  auto out = model_->Forward({&chunk, 1}, LogitsFor::kLastToken);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("token id 512"));
  EXPECT_EQ(seq->length(), 0);
  const std::vector<int32_t> negative = {-1};
  chunk.tokens = negative;
  EXPECT_EQ(model_->Forward({&chunk, 1}, LogitsFor::kLastToken).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ModelInputTest, RejectsEmptyChunkAndDuplicateSequence) {
  auto seq = model_->NewSequence();
  SequenceChunk empty{seq.get(), {}};
  EXPECT_THAT(model_->Forward({&empty, 1}, LogitsFor::kLastToken).status().message(),
              HasSubstr("no tokens"));
  const std::vector<int32_t> tokens = {2, 7};
  SequenceChunk twice[] = {{seq.get(), tokens}, {seq.get(), tokens}};
  EXPECT_THAT(model_->Forward(twice, LogitsFor::kLastToken).status().message(),
              HasSubstr("listed twice"));
  EXPECT_EQ(model_->Forward({}, LogitsFor::kLastToken).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ModelInputTest, RejectsContextBeyondMaxPositionEmbeddings) {
  auto seq = model_->NewSequence();
  std::vector<int32_t> tokens(model_->config().max_position_embeddings + 1, 7);
  SequenceChunk chunk{seq.get(), tokens};
  auto out = model_->Forward({&chunk, 1}, LogitsFor::kLastToken);
  EXPECT_THAT(out.status().message(), HasSubstr("max_position_embeddings"));
  EXPECT_EQ(seq->length(), 0);
}

TEST_F(ModelInputTest, LastTokenLogitsAreOneRowPerSequence) {
  auto a = model_->NewSequence();
  auto b = model_->NewSequence();
  const std::vector<int32_t> ta = {2, 9, 10}, tb = {2, 11};
  SequenceChunk chunks[] = {{a.get(), ta}, {b.get(), tb}};
  auto out = model_->Forward(chunks, LogitsFor::kLastToken);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 2 * model_->config().vocab_size);
  EXPECT_EQ(a->length(), 3);
  EXPECT_EQ(b->length(), 2);
}

TEST(RopeInvFreqTest, DefaultRotatesEveryPair) {
  RopeConfig rope{RopeType::kDefault, 10000.0, 1.0};
  std::vector<float> f = RopeInvFreq(rope, 256);
  ASSERT_EQ(f.size(), 128u);
  EXPECT_FLOAT_EQ(f[0], 1.0f);
  EXPECT_NEAR(f[64], std::pow(10000.0, -128.0 / 256.0), 1e-9);
  for (float x : f) EXPECT_GT(x, 0.0f);
}

// Proportional RoPE (global layers): 64 of 256 pairs rotate, with exponent denominator 512 —
// not the rotated width 128 (gemma4-text.md pitfall 6).
TEST(RopeInvFreqTest, ProportionalUsesFullHeadDimAndZeroesTheRest) {
  RopeConfig rope{RopeType::kProportional, 1e6, 0.25};
  std::vector<float> f = RopeInvFreq(rope, 512);
  ASSERT_EQ(f.size(), 256u);
  for (int i = 0; i < 64; ++i) {
    EXPECT_NEAR(f[i], std::pow(1e6, -2.0 * i / 512.0), 1e-6 * std::pow(1e6, -2.0 * i / 512.0));
  }
  for (int i = 64; i < 256; ++i) EXPECT_EQ(f[i], 0.0f) << i;
  EXPECT_NEAR(f[63], 0.0334, 1e-4);  // lowest rotated frequency
}

}  // namespace
}  // namespace g4
