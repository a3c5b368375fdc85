#include "tools/g4_plan/plan_options.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<PlanOptions> Parse(std::vector<const char*> args) {
  return ParsePlanOptions(absl::MakeConstSpan(args));
}

TEST(PlanOptionsTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("80GiB"), int64_t{80} << 30);
  EXPECT_EQ(*ParseByteSize("80G"), int64_t{80} << 30);
  EXPECT_EQ(*ParseByteSize("80GB"), int64_t{80} * 1000000000);
  EXPECT_EQ(*ParseByteSize("1.5TiB"), int64_t{3} << 39);
  EXPECT_EQ(*ParseByteSize("4096"), 4096);
  EXPECT_FALSE(ParseByteSize("80 parsecs").ok());
  EXPECT_FALSE(ParseByteSize("GiB").ok());
  EXPECT_FALSE(ParseByteSize("0GiB").ok());
}

TEST(PlanOptionsTest, ContractFlags) {
  absl::StatusOr<PlanOptions> o =
      Parse({"--model", "d", "--gpus", "2", "--gpu-memory=80GiB", "--max-context", "1024", "--json"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_dir, "d");
  EXPECT_EQ(o->gpus, 2);
  EXPECT_EQ(o->gpu_memory_bytes, int64_t{80} << 30);
  EXPECT_EQ(o->max_context, 1024);
  EXPECT_TRUE(o->json);
  o = Parse({"--model", "d", "--cpu-ranks", "2", "--tensor-parallel-size", "2",
             "--expert-parallel-size", "1", "--gpu-memory-utilization", "0.8"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->cpu_ranks, 2);
  EXPECT_EQ(o->tensor_parallel_size, 2);
  EXPECT_DOUBLE_EQ(o->memory_utilization, 0.8);
}

TEST(PlanOptionsTest, ErrorsNameTheFlag) {
  EXPECT_THAT(Parse({"--gpus", "1", "--gpu-memory", "1G"}).status().message(), HasSubstr("--model"));
  EXPECT_THAT(Parse({"--model", "d"}).status().message(), HasSubstr("--gpus and --cpu-ranks"));
  EXPECT_THAT(Parse({"--model", "d", "--gpus", "1"}).status().message(), HasSubstr("--gpu-memory"));
  EXPECT_THAT(Parse({"--model", "d", "--gpus", "x", "--gpu-memory", "1G"}).status().message(),
              HasSubstr("--gpus"));
  EXPECT_THAT(Parse({"--model", "d", "--gpus", "1", "--gpu-memory", "lots"}).status().message(),
              HasSubstr("--gpu-memory"));
  EXPECT_THAT(Parse({"--model", "d", "--bogus"}).status().message(), HasSubstr("--bogus"));
  EXPECT_THAT(Parse({"--model", "d", "--cpu-ranks", "1", "--gpu-memory", "1G"}).status().message(),
              HasSubstr("--gpu-memory goes with --gpus"));
}

TEST(PlanOptionsTest, CpuRanksShareHostMemory) {
  absl::StatusOr<PlanOptions> o = Parse({"--model", "d", "--cpu-ranks", "4"});
  ASSERT_TRUE(o.ok());
  absl::StatusOr<PlanRequest> r = MakePlanRequest(*o, "d", int64_t{64} << 30);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->device_kind, DeviceKind::kCpu);
  EXPECT_EQ(r->device_memory_bytes, int64_t{16} << 30);
}

}  // namespace
}  // namespace g4
