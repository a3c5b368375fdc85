// Tensor- and expert-parallel execution of the model: N ranks as threads, connected by Gloo on
// loopback, each holding only its shard. Every rank must produce the logits of the unsharded
// model (within reduction-order tolerance) and transformers' golden logits, and the same greedy
// tokens.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checkpoint.h"
#include "common/safetensors.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "tests/worker/model/golden_reference.h"
#include "tools/g4_generate/greedy_generator.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/key_value_store.h"
#include "worker/model/gemma4_model.h"

namespace g4 {
namespace {

struct Case {
  std::string variant;
  int world_size;
  int expert_parallel_size;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string v = info.param.variant;
  std::replace(v.begin(), v.end(), '-', '_');
  return absl::StrCat(v, "_world", info.param.world_size, "_ep", info.param.expert_parallel_size);
}

double MaxRelDiff(const std::vector<float>& got, const std::vector<float>& want, int64_t vocab) {
  double worst = 0;
  for (size_t row = 0; row * vocab < want.size(); ++row) {
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      max_ref = std::max(max_ref, std::abs(static_cast<double>(want[row * vocab + i])));
      max_diff = std::max(max_diff, std::abs(static_cast<double>(got[row * vocab + i]) -
                                             want[row * vocab + i]));
    }
    worst = std::max(worst, max_diff / max_ref);
  }
  return worst;
}

std::vector<float> Flatten(const testing::Logits& rows) {
  std::vector<float> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

// What one rank computes for the golden cases.
struct RankResult {
  absl::Status status;
  std::vector<float> prefill;
  std::vector<int32_t> greedy;
  std::vector<float> greedy_logits;
  uint64_t bytes_read = 0;
};

RankResult RunRank(const Case& c, int rank, KeyValueStore* store,
                   const testing::GoldenReference& ref) {
  RankResult out;
  GlooOptions options;
  options.rank = rank;
  options.size = c.world_size;
  options.store = store;
  options.prefix = "sharded_test";
  options.timeout = absl::Seconds(20);
  auto comm = CreateGlooCommunicator(options);
  if (!comm.ok()) {
    out.status = comm.status();
    return out;
  }
  ShardConfig shard{rank, c.world_size, c.expert_parallel_size};
  auto model = Gemma4Model::LoadShard(testing::GoldenDir(c.variant), shard, comm->get(),
                                      CreateCpuOps());
  if (!model.ok()) {
    out.status = model.status();
    return out;
  }
  auto seq = (*model)->NewSequence();
  SequenceChunk chunk{seq.get(), ref.prefill.tokens};
  auto logits = (*model)->Forward({&chunk, 1}, LogitsFor::kAllTokens);
  if (!logits.ok()) {
    out.status = logits.status();
    return out;
  }
  out.prefill = *logits;
  GreedyOptions greedy;
  greedy.max_new_tokens = static_cast<int>(ref.greedy_tokens.size());
  auto tokens = GenerateGreedy(**model, ref.greedy_prompt, greedy,
                               [&](int32_t, absl::Span<const float> row) {
                                 out.greedy_logits.insert(out.greedy_logits.end(), row.begin(),
                                                          row.end());
                               });
  if (!tokens.ok()) {
    out.status = tokens.status();
    return out;
  }
  out.greedy = *tokens;
  return out;
}

class ShardedModelTest : public ::testing::TestWithParam<Case> {};

TEST_P(ShardedModelTest, EveryRankMatchesTheUnshardedModelAndTransformers) {
  const Case& c = GetParam();
  const testing::GoldenReference ref = testing::LoadGoldenReference(c.variant);
  auto single = Gemma4Model::Load(testing::GoldenDir(c.variant), CreateCpuOps());
  ASSERT_TRUE(single.ok()) << single.status();
  const int64_t vocab = (*single)->config().vocab_size;
  auto seq = (*single)->NewSequence();
  SequenceChunk chunk{seq.get(), ref.prefill.tokens};
  auto unsharded = (*single)->Forward({&chunk, 1}, LogitsFor::kAllTokens);
  ASSERT_TRUE(unsharded.ok());

  InMemoryKeyValueStore store;
  std::vector<RankResult> results(c.world_size);
  std::vector<std::thread> threads;
  for (int r = 0; r < c.world_size; ++r) {
    threads.emplace_back([&, r] { results[r] = RunRank(c, r, &store, ref); });
  }
  for (auto& t : threads) t.join();

  for (int r = 0; r < c.world_size; ++r) {
    SCOPED_TRACE(absl::StrCat("rank ", r));
    ASSERT_TRUE(results[r].status.ok()) << results[r].status;
    // Reduction order differs from the unsharded sums: fp32 rounding, nothing more.
    EXPECT_LT(MaxRelDiff(results[r].prefill, *unsharded, vocab), 5e-5);
    EXPECT_LT(MaxRelDiff(results[r].prefill, Flatten(ref.prefill.logits), vocab), 1e-4);
    EXPECT_EQ(results[r].greedy, ref.greedy_tokens);
    EXPECT_LT(MaxRelDiff(results[r].greedy_logits, Flatten(ref.greedy_logits), vocab), 1e-4);
  }
}

INSTANTIATE_TEST_SUITE_P(Plans, ShardedModelTest,
                         ::testing::Values(Case{"dense", 2, 1}, Case{"dense", 4, 1},
                                           Case{"dense-bf16", 2, 1}, Case{"dense-wrapper", 2, 1},
                                           Case{"moe", 2, 1}, Case{"moe", 2, 2}, Case{"moe", 4, 2},
                                           Case{"moe", 4, 4}, Case{"efeat", 2, 1}),
                         CaseName);

// A rank reads only its slices (the counting reader): at world size 2 each rank of the dense
// tiny model reads every replicated tensor whole (norms, layer scalars, and the k_proj of the
// global layers, whose single KV head both ranks need) and exactly half of every sharded one
// (embedding, q/k/v/o, MLP) — never the other rank's half.
TEST(ShardLoadingTest, EachRankReadsOnlyItsSlices) {
  for (int rank = 0; rank < 2; ++rank) {
    auto ckpt = Checkpoint::Open(testing::GoldenDir("dense"));
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    uint64_t expected = 0;
    // Every tensor of the file, by its stored name.
    auto file = SafetensorsFile::Open(testing::GoldenDir("dense") + "/model.safetensors");
    ASSERT_TRUE(file.ok());
    for (const TensorInfo& t : (*file)->tensors()) {
      const bool global_k = t.name == "model.layers.2.self_attn.k_proj.weight" ||
                            t.name == "model.layers.5.self_attn.k_proj.weight";
      const bool replicated = t.name.find("norm") != std::string::npos ||
                              t.name.find("layer_scalar") != std::string::npos || global_k;
      const uint64_t bytes = t.end - t.begin;
      expected += replicated ? bytes : bytes / 2;
    }
    auto layout = ShardLayout::Create((*ckpt)->config(), ShardConfig{rank, 2, 1});
    ASSERT_TRUE(layout.ok());
    ASSERT_TRUE(LoadModelWeights(**ckpt, *layout).ok());
    EXPECT_EQ((*ckpt)->bytes_read(), expected) << "rank " << rank;
  }
}

TEST(ShardLayoutTest, ReplicatesKvHeadsWhenRanksExceedThem) {
  auto ckpt = Checkpoint::Open(testing::GoldenDir("dense"));
  ASSERT_TRUE(ckpt.ok());
  const ModelConfig& c = (*ckpt)->config();  // 4 q heads; 2 sliding KV heads; 1 global KV head
  for (int rank = 0; rank < 4; ++rank) {
    auto layout = ShardLayout::Create(c, ShardConfig{rank, 4, 1});
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->attention(0).q_heads.begin, rank);
    EXPECT_EQ(layout->attention(0).kv_heads.begin, rank / 2);  // each sliding KV head: 2 ranks
    EXPECT_EQ(layout->attention(2).kv_heads.begin, 0);         // the global KV head: all 4
    EXPECT_EQ(layout->attention(2).kv_heads.size(), 1);
  }
  EXPECT_EQ(ShardLayout::Create(c, ShardConfig{0, 3, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ShardLayout::Create(c, ShardConfig{0, 8, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);  // 4 query heads over 8 ranks
  EXPECT_EQ(ShardLayout::Create(c, ShardConfig{0, 2, 2}).status().code(),
            absl::StatusCode::kInvalidArgument);  // expert parallel on a dense model
}

}  // namespace
}  // namespace g4
