#include "coordinator/planner/planner.h"

#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
namespace pb = ::g4serve::v1;

constexpr int64_t kGiB = int64_t{1} << 30;

ModelConfig LoadConfig(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<ModelConfig> c = ParseModelConfig(ss.str(), dir);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

const ModelConfig& Dense31B() {
  static const ModelConfig c = LoadConfig("tests/data/models/gemma-4-31B");
  return c;
}
const ModelConfig& Moe26B() {
  static const ModelConfig c = LoadConfig("tests/data/models/gemma-4-26B-A4B");
  return c;
}

PlanRequest Gpus(int n, int64_t gib, int tp = 0, int ep = 0) {
  PlanRequest r;
  r.model_name = "m";
  r.num_devices = n;
  r.device_memory_bytes = gib * kGiB;
  r.tensor_parallel_size = tp;
  r.expert_parallel_size = ep;
  return r;
}

pb::ParallelPlan MustPlan(const ModelConfig& c, const PlanRequest& r) {
  absl::StatusOr<pb::ParallelPlan> p = MakePlan(c, r);
  EXPECT_TRUE(p.ok()) << p.status();
  if (!p.ok()) return {};
  absl::Status check = CheckPlan(c, *p);
  EXPECT_TRUE(check.ok()) << check;
  return *p;
}

// KV per 256K-token sequence (gemma4-text.md §4, g4serve's layout): the sliding layers keep
// K and V of the last 1024 tokens; the k_eq_v global layers cache V only (K is derived from V).
constexpr int64_t k31BKvPerSequence = int64_t{50} * 16 * 256 * 2 * 2 * 1024 +
                                      int64_t{10} * 4 * 512 * 2 * 262144;  // 10.78 GiB
constexpr int64_t k26BKvPerSequence = int64_t{25} * 8 * 256 * 2 * 2 * 1024 +
                                      int64_t{5} * 2 * 512 * 2 * 262144;  // 2.70 GiB

TEST(PlannerTest, Dense31BOnOne80GiBGpuFitsOneMaxContextSequence) {
  const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(1, 80));
  EXPECT_EQ(p.tensor_parallel_size(), 1);
  EXPECT_EQ(p.world_size(), 1);
  // Appendix A: ≈ 30.70 B parameters, bf16.
  EXPECT_NEAR(p.model().num_parameters() / 1e9, 30.70, 0.01);
  const int64_t w = p.ranks(0).memory().weights_bytes();
  EXPECT_EQ(w, p.model().num_parameters() * 2);
  EXPECT_NEAR(static_cast<double>(w) / kGiB, 57.18, 0.01);
  EXPECT_GT(p.ranks(0).memory().kv_budget_bytes(), 0);
  EXPECT_EQ(p.max_context(), 262144);
  EXPECT_EQ(p.kv_bytes_per_token_sliding(), 50 * 16384);
  EXPECT_EQ(p.kv_bytes_per_token_global(), 10 * 4096);
  EXPECT_EQ(p.kv_bytes_per_sequence_sliding(), 838860800);
  EXPECT_EQ(p.kv_bytes_per_sequence_global(), 10737418240);
  EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), k31BKvPerSequence);
  EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), 11576279040);
  ASSERT_EQ(p.kv_heads_size(), 2);
  EXPECT_EQ(p.kv_heads(0).cached_tensors(), 2);
  EXPECT_EQ(p.kv_heads(1).cached_tensors(), 1);
  // 72 GiB usable − 57.18 GiB weights − 3.6 GiB workspace holds one 10.78 GiB sequence.
  EXPECT_EQ(p.max_concurrent_sequences_at_max_context(), 1);
  EXPECT_EQ(p.max_single_sequence_context(), 262144);
  EXPECT_EQ(p.warnings_size(), 0);
}

TEST(PlannerTest, Dense31BShortOfOneSequenceSaysSo) {
  const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(1, 76));
  // 68.4 GiB usable leaves about 7.6 GiB after weights and workspace: less than 10.78 GiB.
  EXPECT_EQ(p.max_concurrent_sequences_at_max_context(), 0);
  EXPECT_GT(p.max_single_sequence_context(), 100000);
  EXPECT_LT(p.max_single_sequence_context(), 262144);
  ASSERT_EQ(p.warnings_size(), 1);
  EXPECT_THAT(p.warnings(0), HasSubstr("short by"));
}

// The acceptance numbers: one H200 (141 GiB). Caching K and V on the global layers
// (20.78 GiB per sequence) gave 3 sequences of 262144 tokens on the 31B and 14 on the 26B-A4B.
TEST(PlannerTest, OneH200HoldsTwiceTheMaxContextSequences) {
  const pb::ParallelPlan dense = MustPlan(Dense31B(), Gpus(1, 141));
  EXPECT_EQ(dense.kv_bytes_per_sequence_at_max_context(), k31BKvPerSequence);
  EXPECT_EQ(dense.max_concurrent_sequences_at_max_context(), 6);
  const pb::ParallelPlan moe = MustPlan(Moe26B(), Gpus(1, 141));
  EXPECT_EQ(moe.kv_bytes_per_sequence_at_max_context(), k26BKvPerSequence);
  EXPECT_EQ(moe.max_concurrent_sequences_at_max_context(), 28);
}

TEST(PlannerTest, Moe26BKvPerSequenceMatchesSpec) {
  const pb::ParallelPlan p = MustPlan(Moe26B(), Gpus(1, 80));
  EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), k26BKvPerSequence);
  EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), 2894069760);
  EXPECT_EQ(p.kv_bytes_per_sequence_sliding(), 209715200);
  EXPECT_EQ(p.kv_bytes_per_sequence_global(), 2684354560);
  EXPECT_EQ(p.kv_heads(1).cached_tensors(), 1);
  EXPECT_NEAR(p.model().num_parameters() / 1e9, 25.2, 0.05);
  EXPECT_GE(p.max_concurrent_sequences_at_max_context(), 1);
}

TEST(PlannerTest, ShorterMaxContextScalesGlobalOnly) {
  PlanRequest r = Gpus(1, 80);
  r.max_context = 32768;
  const pb::ParallelPlan p = MustPlan(Dense31B(), r);
  EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), 50 * 16384 * 1024 + int64_t{10} * 4096 * 32768);
  EXPECT_GE(p.max_concurrent_sequences_at_max_context(), 1);
  r.max_context = 300000;
  EXPECT_THAT(MakePlan(Dense31B(), r).status().message(), HasSubstr("max-context 300000"));
}

TEST(PlannerTest, Dense31BTensorParallelDegrees) {
  for (int tp : {2, 4, 8, 16}) {
    SCOPED_TRACE(tp);
    const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(tp, 80, tp));
    EXPECT_EQ(p.ranks_size(), tp);
    EXPECT_TRUE(p.vocab_parallel());
    ASSERT_EQ(p.kv_heads_size(), 2);
    EXPECT_EQ(p.kv_heads(0).layer_type(), "sliding");
    EXPECT_FALSE(p.kv_heads(0).replicated());  // 16 sliding KV heads
    EXPECT_EQ(p.kv_heads(0).kv_heads_per_rank(), 16 / tp);
    const pb::KvHeadSharding& g = p.kv_heads(1);
    EXPECT_EQ(g.layer_type(), "global");
    EXPECT_EQ(g.replicated(), tp > 4);
    EXPECT_EQ(g.replication_factor(), tp > 4 ? tp / 4 : 1);
    EXPECT_EQ(g.kv_heads_per_rank(), tp > 4 ? 1 : 4 / tp);
    // Whole-model KV numbers do not depend on TP; per-rank ones include replication.
    EXPECT_EQ(p.kv_bytes_per_sequence_at_max_context(), k31BKvPerSequence);
    const int64_t per_rank_global = int64_t{10} * g.kv_heads_per_rank() * 512 * 2;  // V only
    EXPECT_EQ(p.ranks(0).kv_bytes_per_token_global(), per_rank_global);
    bool says = false;
    for (const std::string& w : p.warnings()) says |= w.find("replicated on") != std::string::npos;
    EXPECT_EQ(says, tp > 4);
  }
}

TEST(PlannerTest, ReplicatedGlobalKvHeadsAt8) {
  const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(8, 80, 8));
  // Rank r uses global KV head r / 2: its k_proj rows [h·512, (h+1)·512).
  for (int r = 0; r < 8; ++r) {
    absl::StatusOr<std::vector<RankTensor>> t = SlicesForRank(Dense31B(), p, r);
    ASSERT_TRUE(t.ok()) << t.status();
    std::map<std::string, RankTensor> by_name;
    for (const RankTensor& x : *t) by_name[x.name] = x;
    const RankTensor& k = by_name.at("layers.5.self_attn.k_proj.weight");
    EXPECT_EQ(k.slice.row_begin, (r / 2) * 512);
    EXPECT_EQ(k.slice.row_end, (r / 2 + 1) * 512);
    const RankTensor& q = by_name.at("layers.5.self_attn.q_proj.weight");
    EXPECT_EQ(q.slice.row_begin, r * 4 * 512);
    const RankTensor& o = by_name.at("layers.0.self_attn.o_proj.weight");
    EXPECT_EQ(o.slice.col_begin, r * 4 * 256);
    EXPECT_EQ(o.slice.col_end, (r + 1) * 4 * 256);
    EXPECT_EQ(by_name.at("layers.0.mlp.down_proj.weight").slice.col_begin, r * 21504 / 8);
    EXPECT_EQ(by_name.at("embed_tokens.weight").slice.row_begin, r * 262144 / 8);
    EXPECT_FALSE(by_name.count("layers.5.self_attn.v_proj.weight"));  // k_eq_v
    EXPECT_EQ(by_name.at("norm.weight").slice.col_end, 5376);
  }
}

TEST(PlannerTest, InvalidTensorParallelNamesTheField) {
  absl::Status s = MakePlan(Dense31B(), Gpus(4, 80, 3)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tensor-parallel-size 3"));
  EXPECT_THAT(s.message(), HasSubstr("num_attention_heads = 32"));
  s = MakePlan(Dense31B(), Gpus(2, 80, 4)).status();
  EXPECT_THAT(s.message(), HasSubstr("tensor-parallel-size 4: must be in [1, 2]"));
  s = MakePlan(Dense31B(), Gpus(2, 80, 2, 2)).status();
  EXPECT_THAT(s.message(), HasSubstr("expert-parallel-size 2: the model has no experts"));
}

TEST(PlannerTest, Moe26BExpertParallel) {
  for (int ep : {2, 4, 8}) {
    SCOPED_TRACE(ep);
    const pb::ParallelPlan p = MustPlan(Moe26B(), Gpus(ep, 80, ep));
    EXPECT_EQ(p.expert_parallel_size(), ep);  // default: EP = TP
    EXPECT_EQ(p.expert_tensor_parallel_size(), 1);
    for (int r = 0; r < ep; ++r) {
      EXPECT_EQ(p.ranks(r).expert_begin(), r * 128 / ep);
      EXPECT_EQ(p.ranks(r).expert_end(), (r + 1) * 128 / ep);
    }
    EXPECT_EQ(p.kv_heads(1).replicated(), ep > 2);
  }
}

TEST(PlannerTest, Moe26BExpertTensorParallelInsideEpGroups) {
  // TP 4 = EP 2 × expert TP 2: experts [0,64) on ranks 0-1, each with half of the 704 width.
  const pb::ParallelPlan p = MustPlan(Moe26B(), Gpus(4, 80, 4, 2));
  EXPECT_EQ(p.expert_tensor_parallel_size(), 2);
  absl::StatusOr<std::vector<RankTensor>> t = SlicesForRank(Moe26B(), p, 1);
  ASSERT_TRUE(t.ok());
  std::vector<RankTensor> gate_up;
  for (const RankTensor& x : *t) {
    if (x.name == "layers.0.experts.gate_up_proj") gate_up.push_back(x);
    if (x.name == "layers.0.experts.down_proj") {
      EXPECT_EQ(x.slice.col_begin, 352);
      EXPECT_EQ(x.slice.col_end, 704);
    }
  }
  ASSERT_EQ(gate_up.size(), 2u);  // gate half and up half
  EXPECT_EQ(gate_up[0].expert_begin, 0);
  EXPECT_EQ(gate_up[0].expert_end, 64);
  EXPECT_EQ(gate_up[0].slice.row_begin, 352);
  EXPECT_EQ(gate_up[0].slice.row_end, 704);
  EXPECT_EQ(gate_up[1].slice.row_begin, 704 + 352);
  EXPECT_EQ(gate_up[1].slice.row_end, 1408);
  EXPECT_THAT(MakePlan(Moe26B(), Gpus(4, 80, 4, 3)).status().message(),
              HasSubstr("expert-parallel-size 3: must divide tensor-parallel-size 4"));
}

TEST(PlannerTest, AutomaticDegreeIsTheSmallestThatFits) {
  // 31B on 8 × 80 GiB: TP 1 fits the weights and one 256K sequence → 8 replicas.
  const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(8, 80));
  EXPECT_EQ(p.tensor_parallel_size(), 1);
  EXPECT_EQ(p.num_replicas(), 8);
  EXPECT_GE(p.max_concurrent_sequences_at_max_context(), 1);
  // On 8 × 76 GiB TP 1 fits the weights but no 256K sequence; TP 2 fits → 4 replicas.
  const pb::ParallelPlan q = MustPlan(Dense31B(), Gpus(8, 76));
  EXPECT_EQ(q.tensor_parallel_size(), 2);
  EXPECT_EQ(q.num_replicas(), 4);
  EXPECT_GE(q.max_concurrent_sequences_at_max_context(), 1);
  // 26B on 2 × 80 GiB: TP 1 fits → 2 replicas.
  EXPECT_EQ(MustPlan(Moe26B(), Gpus(2, 80)).tensor_parallel_size(), 1);
}

TEST(PlannerTest, TooSmallGpuSaysByHowMuch) {
  absl::Status s = MakePlan(Dense31B(), Gpus(1, 24)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("does not fit"));
  EXPECT_THAT(s.message(), HasSubstr("device has 21.60 GiB usable"));
  EXPECT_THAT(s.message(), HasSubstr("short by"));
  // Automatic choice reports the largest degree tried.
  s = MakePlan(Dense31B(), Gpus(2, 24)).status();
  EXPECT_THAT(s.message(), HasSubstr("tensor-parallel-size 2"));
  EXPECT_THAT(s.message(), HasSubstr("short by"));
}

TEST(PlannerTest, CheckPlanCatchesCorruption) {
  const pb::ParallelPlan good = MustPlan(Moe26B(), Gpus(4, 80, 4, 2));
  ASSERT_TRUE(CheckPlan(Moe26B(), good).ok());
  auto expect_bad = [&](auto mutate, const std::string& what) {
    pb::ParallelPlan p = good;
    mutate(p);
    absl::Status s = CheckPlan(Moe26B(), p);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << what;
  };
  // A gap: rank 1's q_proj slice shrunk (bytes kept consistent).
  expect_bad([](pb::ParallelPlan& p) {
    for (pb::TensorSlice& s : *p.mutable_ranks(1)->mutable_slices()) {
      if (s.partition() == pb::HEAD_ROWS) s.set_row_end(s.row_end() - 1);
    }
  }, "gap");
  // An overlap: rank 0 takes rank 1's experts too.
  expect_bad([](pb::ParallelPlan& p) {
    for (pb::TensorSlice& s : *p.mutable_ranks(2)->mutable_slices()) {
      if (s.partition() == pb::EXPERTS) s.set_expert_begin(0);
    }
  }, "overlap");
  // A dropped tensor.
  expect_bad([](pb::ParallelPlan& p) { p.mutable_ranks(3)->mutable_slices()->RemoveLast(); },
             "dropped");
  // Memory sums.
  expect_bad([](pb::ParallelPlan& p) {
    p.mutable_ranks(0)->mutable_memory()->set_free_bytes(p.ranks(0).memory().free_bytes() + 1);
  }, "free");
  expect_bad([](pb::ParallelPlan& p) {
    p.set_max_concurrent_sequences_at_max_context(p.max_concurrent_sequences_at_max_context() + 1000);
  }, "concurrency");
  expect_bad([](pb::ParallelPlan& p) { p.set_kv_bytes_per_token_global(1); }, "kv");
  // Degrees.
  expect_bad([](pb::ParallelPlan& p) { p.set_expert_parallel_size(3); }, "ep");
  expect_bad([](pb::ParallelPlan& p) { p.mutable_ranks()->RemoveLast(); }, "ranks");
  expect_bad([](pb::ParallelPlan& p) { p.mutable_kv_heads(1)->set_replicated(false); }, "kv rep");
  expect_bad([](pb::ParallelPlan& p) { p.mutable_kv_heads(1)->set_cached_tensors(2); },
             "kv cached tensors");
  // Unknown tensor.
  expect_bad([](pb::ParallelPlan& p) { p.mutable_ranks(0)->mutable_slices(0)->set_tensor("nope"); },
             "unknown");
}

TEST(PlannerTest, TinyDenseOnTwoCpuRanks) {
  const ModelConfig c = LoadConfig("tests/data/golden/dense");
  PlanRequest r;
  r.model_name = "dense";
  r.device_kind = DeviceKind::kCpu;
  r.num_devices = 2;
  r.device_memory_bytes = 1 * kGiB;
  const pb::ParallelPlan p = MustPlan(c, r);
  EXPECT_EQ(p.tensor_parallel_size(), 2);
  EXPECT_EQ(p.device().kind(), pb::DeviceSpec::CPU);
  EXPECT_EQ(p.max_context(), 512);
  EXPECT_TRUE(p.kv_heads(1).replicated());  // 1 global KV head over 2 ranks
  // Every rank's weights sum to the model plus the replicated parts.
  int64_t sum = 0;
  for (const pb::RankPlan& rp : p.ranks()) sum += rp.memory().weights_bytes();
  EXPECT_EQ(sum, p.weights_bytes_per_replica());
  EXPECT_GT(sum, p.model().num_parameters() * 2);
}

// On the CPU backend the workspace counts the attention buffers that grow with the context
// (kernels/cpu/attention_workspace.h; the kernel's allocations are checked against those
// formulas by tests/kernels/cpu/attention_workspace_test.cc). The long-context checkpoint at
// 262 144 tokens, TP 2 (one query head and one KV head per rank), 2048-token steps:
TEST(PlannerTest, CpuWorkspaceCountsTheAttentionBuffersOfTheMaxContext) {
  const ModelConfig c = LoadConfig("tests/data/golden/long");
  PlanRequest r;
  r.model_name = "long";
  r.num_devices = 2;
  r.tensor_parallel_size = 2;
  r.device_memory_bytes = 4 * kGiB;
  r.max_num_seqs = 1;
  r.max_num_batched_tokens = 2048;
  r.runtime_reserve_bytes = 64 << 20;
  r.device_kind = DeviceKind::kGpu;
  const pb::ParallelPlan gpu = MustPlan(c, r);
  r.device_kind = DeviceKind::kCpu;
  const pb::ParallelPlan cpu = MustPlan(c, r);
  ASSERT_EQ(cpu.max_context(), 262144);
  const int64_t scores = 16 * 262144;   // global layer: 16-query blocks × 262 144 keys
  const int64_t derived = 4096 * 32;    // one tile of derived keys (head_dim 32)
  const int64_t gather_v = 262144 * 32;  // V rows of the global layer (K is derived)
  const int64_t gather_k = 262144;      // K rows of a sliding layer: 3071 × 16, one granule
  const int64_t rope = 2 * 262144 * 2 * 4;  // cos/sin of 4 rotated pairs, old + new table
  const int64_t expected = 4 * (scores + derived + gather_v + gather_k + rope);
  EXPECT_EQ(expected, 68681728);  // 65.5 MiB
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(cpu.ranks(rank).memory().activation_workspace_bytes() -
                  gpu.ranks(rank).memory().activation_workspace_bytes(),
              expected)
        << "rank " << rank;
  }
  // At 32 768 tokens: 128-query blocks, everything 8x smaller but the derived tile and the
  // sliding gather.
  r.max_context = 32768;
  const pb::ParallelPlan short_cpu = MustPlan(c, r);
  r.device_kind = DeviceKind::kGpu;
  const pb::ParallelPlan short_gpu = MustPlan(c, r);
  EXPECT_EQ(short_cpu.ranks(0).memory().activation_workspace_bytes() -
                short_gpu.ranks(0).memory().activation_workspace_bytes(),
            4 * (128 * 32768 + derived + 32768 * 32 + gather_k + 2 * 32768 * 2 * 4));
}

TEST(PlannerTest, FormatsTableAndJson) {
  const pb::ParallelPlan p = MustPlan(Dense31B(), Gpus(8, 80, 8));
  const std::string table = FormatPlanTable(p);
  EXPECT_THAT(table, HasSubstr("11576279040 B (10.78 GiB)"));
  EXPECT_THAT(table, HasSubstr("global 40960 B (10 layers, V only)"));
  EXPECT_THAT(table, HasSubstr("sliding 819200 B (50 layers, K+V)"));
  EXPECT_THAT(table, HasSubstr("global 4 → 1 per rank (REPLICATED ×2)"));
  EXPECT_THAT(table, HasSubstr("Tensor slices, rank 7"));
  absl::StatusOr<std::string> json = FormatPlanJson(p);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, HasSubstr("\"kv_bytes_per_sequence_at_max_context\": \"11576279040\""));
  EXPECT_THAT(*json, HasSubstr("\"cached_tensors\": 1"));
  EXPECT_THAT(*json, HasSubstr("\"tensor_parallel_size\": 8"));
}

}  // namespace
}  // namespace g4
