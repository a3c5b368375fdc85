// g4-plan as a user runs it: table and JSON output, errors (one stderr line, exit 2).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"
#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using Result = ::g4::testing::RunResult;

Result RunPlan(const std::string& args) { return ::g4::testing::RunBinary(G4_PLAN_BIN, args); }

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(G4PlanCliTest, Dense31BOnOne80GiBGpu) {
  Result r = RunPlan("--model tests/data/models/gemma-4-31B --gpus 1 --gpu-memory 80GiB");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("11576279040 B (10.78 GiB)"));
  EXPECT_THAT(r.out, HasSubstr("global 40960 B (10 layers, V only)"));
  EXPECT_THAT(r.out, HasSubstr("tensor-parallel-size 1"));
  EXPECT_THAT(r.out, HasSubstr("57.18"));  // weights GiB
  EXPECT_THAT(r.out, HasSubstr("262144 tokens × 1 concurrent sequences"));
  EXPECT_TRUE(r.err.empty()) << r.err;
}

// Caching V only on the global layers: one H200 holds 6 sequences of 262144 tokens (3 when
// the global layers cached K and V), the KV of one being 50·16·256·2·2·1024 + 10·4·512·2·262144 B.
TEST(G4PlanCliTest, Dense31BOnOneH200) {
  Result r = RunPlan("--model tests/data/models/gemma-4-31B --gpus 1 --gpu-memory 141GiB");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("per 262144-token sequence  11576279040 B (10.78 GiB)"));
  EXPECT_THAT(r.out, HasSubstr("262144 tokens × 6 concurrent sequences"));
}

TEST(G4PlanCliTest, Moe26BOnTwo80GiBGpusJson) {
  Result r = RunPlan(
      "--model tests/data/models/gemma-4-26B-A4B --gpus 2 --gpu-memory 80GiB "
      "--tensor-parallel-size 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("kv_bytes_per_sequence_at_max_context"), "2894069760");
  EXPECT_EQ(j.at("kv_heads")[1].at("cached_tensors"), 1);
  EXPECT_EQ(j.at("tensor_parallel_size"), 2);
  EXPECT_EQ(j.at("expert_parallel_size"), 2);
  EXPECT_EQ(j.at("ranks").size(), 2u);
  EXPECT_EQ(j.at("ranks")[1].at("expert_begin"), "64");
  EXPECT_EQ(j.at("max_context"), "262144");
}

TEST(G4PlanCliTest, Moe26BTablePrintsSpecKv) {
  Result r = RunPlan("--model tests/data/models/gemma-4-26B-A4B --gpus 2 --gpu-memory 80GiB");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2894069760 B (2.70 GiB)"));
}

TEST(G4PlanCliTest, ReplicationIsSaid) {
  Result r = RunPlan("--model tests/data/models/gemma-4-31B --gpus 16 --gpu-memory 80GiB "
                     "--tensor-parallel-size 16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("global 4 → 1 per rank (REPLICATED ×4)"));
  EXPECT_THAT(r.out, HasSubstr("replicated on 4 ranks"));
}

TEST(G4PlanCliTest, TinyDenseOnCpuRanks) {
  Result r = RunPlan("--model tests/data/golden/dense --cpu-ranks 2 --cpu-memory 1GiB");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("2 × CPU rank"));
  EXPECT_THAT(r.out, HasSubstr("tensor-parallel-size 2"));
  r = RunPlan("--model tests/data/golden/dense --cpu-ranks 2");  // memory from /proc/meminfo
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(G4PlanCliTest, ErrorsAreOneLineExit2) {
  for (const std::string& args :
       {std::string("--model tests/data/models/gemma-4-31B --gpus 1 --gpu-memory 24GiB"),
        std::string("--model tests/data/models/gemma-4-31B --gpus 4 --gpu-memory 80GiB "
                    "--tensor-parallel-size 3"),
        std::string("--model tests/data/models/gemma-4-31B --gpus 1"),
        std::string("--model /nonexistent --gpus 1 --gpu-memory 80GiB"),
        std::string("--model tests/data/models/gemma-4-31B --gpus 1 --gpu-memory 80GiB "
                    "--max-context 999999999")}) {
    SCOPED_TRACE(args);
    Result r = RunPlan(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("g4-plan: "));
    EXPECT_TRUE(r.out.empty());
  }
  Result r = RunPlan("--model tests/data/models/gemma-4-31B --gpus 1 --gpu-memory 24GiB");
  EXPECT_THAT(r.err, HasSubstr("does not fit"));
  EXPECT_THAT(r.err, HasSubstr("short by 39.20 GiB"));
  r = RunPlan("--model tests/data/models/gemma-4-31B --gpus 4 --gpu-memory 80GiB "
              "--tensor-parallel-size 3");
  EXPECT_THAT(r.err, HasSubstr("tensor-parallel-size 3: num_attention_heads = 32"));
}

}  // namespace
