// The CPU model against Hugging Face transformers (fp32, eager) on tiny random Gemma 4
// checkpoints: dense, MoE, E-features (PLE, KV sharing, double-wide MLP), bf16 weights and the
// multimodal wrapper layout. Tolerance: max |Δlogit| ≤ 1e-4 · max |logit| per position.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "tests/worker/model/golden_reference.h"
#include "tools/g4_generate/greedy_generator.h"
#include "worker/model/gemma4_model.h"

namespace g4 {
namespace {

using testing::GoldenReference;
using testing::Logits;

constexpr double kRelTol = 1e-4;

// Compares one position's logits; returns a message on mismatch.
::testing::AssertionResult LogitsMatch(const float* got, const std::vector<float>& want) {
  double max_ref = 0, max_diff = 0;
  size_t worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    max_ref = std::max(max_ref, std::abs(static_cast<double>(want[i])));
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    if (diff > max_diff) {
      max_diff = diff;
      worst = i;
    }
  }
  if (max_diff > kRelTol * max_ref) {
    return ::testing::AssertionFailure()
           << "max |Δ| " << max_diff << " at id " << worst << " (got " << got[worst]
           << ", want " << want[worst] << "), limit " << kRelTol * max_ref;
  }
  const int64_t got_arg = std::max_element(got, got + want.size()) - got;
  const int64_t want_arg = std::max_element(want.begin(), want.end()) - want.begin();
  if (got_arg != want_arg) {
    return ::testing::AssertionFailure() << "argmax " << got_arg << " != " << want_arg;
  }
  return ::testing::AssertionSuccess();
}

void ExpectRowsMatch(const std::vector<float>& got, const Logits& want, int64_t vocab,
                     const std::string& what) {
  ASSERT_EQ(got.size(), want.size() * vocab) << what;
  for (size_t p = 0; p < want.size(); ++p) {
    EXPECT_TRUE(LogitsMatch(&got[p * vocab], want[p])) << what << ", row " << p;
  }
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = testing::LoadGoldenReference(GetParam());
    auto model = Gemma4Model::Load(testing::GoldenDir(GetParam()), CreateCpuOps());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(*model);
    vocab_ = model_->config().vocab_size;
  }

  std::vector<float> Run(SequenceKvCache* seq, const std::vector<int32_t>& tokens,
                         LogitsFor which) {
    SequenceChunk chunk{seq, tokens};
    auto logits = model_->Forward({&chunk, 1}, which);
    EXPECT_TRUE(logits.ok()) << logits.status();
    return logits.ok() ? *logits : std::vector<float>();
  }

  GoldenReference ref_;
  std::unique_ptr<Gemma4Model> model_;
  int64_t vocab_ = 0;
};

TEST_P(GoldenTest, PrefillMatchesTransformers) {
  auto seq = model_->NewSequence();
  ExpectRowsMatch(Run(seq.get(), ref_.prefill.tokens, LogitsFor::kAllTokens), ref_.prefill.logits,
                  vocab_, "prefill");
}

TEST_P(GoldenTest, PrefillThenDecodeMatchesTransformers) {
  const auto& tokens = ref_.prefill_decode.tokens;
  auto seq = model_->NewSequence();
  Run(seq.get(), {tokens.begin(), tokens.begin() + ref_.prefill_len}, LogitsFor::kLastToken);
  std::vector<float> decoded;
  for (size_t p = ref_.prefill_len; p < tokens.size(); ++p) {
    std::vector<float> row = Run(seq.get(), {tokens[p]}, LogitsFor::kLastToken);
    decoded.insert(decoded.end(), row.begin(), row.end());
  }
  ExpectRowsMatch(decoded, ref_.prefill_decode.logits, vocab_, "decode");
}

TEST_P(GoldenTest, BatchOfDifferentLengthsMatchesTransformers) {
  std::vector<std::unique_ptr<SequenceKvCache>> seqs;
  std::vector<SequenceChunk> chunks;
  for (const auto& s : ref_.batch) {
    seqs.push_back(model_->NewSequence());
    chunks.push_back({seqs.back().get(), s.tokens});
  }
  auto logits = model_->Forward(chunks, LogitsFor::kAllTokens);
  ASSERT_TRUE(logits.ok()) << logits.status();
  size_t row = 0;
  for (size_t i = 0; i < ref_.batch.size(); ++i) {
    const size_t n = ref_.batch[i].tokens.size();
    std::vector<float> part(logits->begin() + row * vocab_, logits->begin() + (row + n) * vocab_);
    ExpectRowsMatch(part, ref_.batch[i].logits, vocab_, "batch sequence " + std::to_string(i));
    row += n;
  }
}

TEST_P(GoldenTest, GreedyGenerationMatchesTransformers) {
  GreedyOptions options;
  options.max_new_tokens = static_cast<int>(ref_.greedy_tokens.size());
  std::vector<float> logits;
  auto tokens = GenerateGreedy(*model_, ref_.greedy_prompt, options,
                               [&](int32_t, absl::Span<const float> row) {
                                 logits.insert(logits.end(), row.begin(), row.end());
                               });
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(*tokens, ref_.greedy_tokens);
  ExpectRowsMatch(logits, ref_.greedy_logits, vocab_, "greedy");
}

// Feeding a prompt in chunks of every size (one token at a time included) gives the logits of
// one full prefill: exercises sliding-window eviction across chunk boundaries.
TEST_P(GoldenTest, ChunkedPrefillEqualsFullPrefill) {
  const auto& tokens = ref_.prefill.tokens;
  for (size_t chunk : {1, 2, 3, 5, 7}) {
    auto seq = model_->NewSequence();
    std::vector<float> all;
    for (size_t p = 0; p < tokens.size(); p += chunk) {
      const size_t end = std::min(tokens.size(), p + chunk);
      std::vector<float> part = Run(seq.get(), {tokens.begin() + p, tokens.begin() + end},
                                    LogitsFor::kAllTokens);
      all.insert(all.end(), part.begin(), part.end());
    }
    ExpectRowsMatch(all, ref_.prefill.logits, vocab_, "chunk " + std::to_string(chunk));
  }
}

// A decode step of one sequence batched with the prefill of another changes neither.
TEST_P(GoldenTest, MixedPrefillAndDecodeBatch) {
  const auto& a = ref_.prefill_decode.tokens;
  const auto& b = ref_.prefill.tokens;
  auto seq_a = model_->NewSequence();
  auto seq_b = model_->NewSequence();
  Run(seq_a.get(), {a.begin(), a.begin() + ref_.prefill_len}, LogitsFor::kLastToken);
  const std::vector<int32_t> next = {a[ref_.prefill_len]};
  SequenceChunk chunks[] = {{seq_a.get(), next}, {seq_b.get(), b}};
  auto logits = model_->Forward(chunks, LogitsFor::kAllTokens);
  ASSERT_TRUE(logits.ok()) << logits.status();
  std::vector<float> decode_row(logits->begin(), logits->begin() + vocab_);
  ExpectRowsMatch(decode_row, {ref_.prefill_decode.logits[0]}, vocab_, "decode in mixed batch");
  std::vector<float> prefill_rows(logits->begin() + vocab_, logits->end());
  ExpectRowsMatch(prefill_rows, ref_.prefill.logits, vocab_, "prefill in mixed batch");
}

INSTANTIATE_TEST_SUITE_P(Variants, GoldenTest,
                         ::testing::Values("dense", "moe", "efeat", "dense-bf16", "dense-wrapper"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace g4
