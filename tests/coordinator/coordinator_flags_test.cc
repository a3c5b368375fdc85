#include "coordinator/coordinator_flags.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

TEST(CoordinatorFlagsTest, ParsesVllmStyleFlags) {
  absl::StatusOr<CoordinatorFlags> f = ParseCoordinatorFlags(
      {"--model", "/m/gemma", "--tensor-parallel-size=2", "--num_replicas", "3", "--port", "0",
       "--port-file", "/tmp/p", "--collective-timeout", "45s", "--health-interval", "250ms",
       "--max-model-len", "8192"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->model, "/m/gemma");
  EXPECT_EQ(f->tensor_parallel_size, 2);
  EXPECT_EQ(f->num_replicas, 3);
  EXPECT_EQ(f->port_file, "/tmp/p");
  EXPECT_EQ(f->collective_timeout, absl::Seconds(45));
  EXPECT_EQ(f->health_interval, absl::Milliseconds(250));
  EXPECT_EQ(f->max_model_len, 8192);
  EXPECT_EQ(f->host, "127.0.0.1");
}

TEST(CoordinatorFlagsTest, SecurityFlags) {
  absl::StatusOr<CoordinatorFlags> f = ParseCoordinatorFlags({"--model", "m"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->api_keys.empty());
  EXPECT_EQ(f->internal_port, -1);
  EXPECT_FALSE(f->protect_health_and_metrics);
  f = ParseCoordinatorFlags({"--model", "m", "--api-key", "sk-a", "--api-key=sk-b",
                             "--api-key-file", "/run/keys", "--protect-health-and-metrics",
                             "--internal-port", "0", "--internal-host", "10.0.0.1",
                             "--internal-port-file", "/tmp/ip"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->api_keys, (std::vector<std::string>{"sk-a", "sk-b"}));
  EXPECT_EQ(f->api_key_file, "/run/keys");
  EXPECT_TRUE(f->protect_health_and_metrics);
  EXPECT_EQ(f->internal_port, 0);
  EXPECT_EQ(f->internal_host, "10.0.0.1");
  EXPECT_EQ(f->internal_port_file, "/tmp/ip");
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--internal-port-file", "/tmp/ip"})
                  .status()
                  .message(),
              HasSubstr("--internal-port-file: needs --internal-port"));
  EXPECT_THAT(
      ParseCoordinatorFlags({"--model", "m", "--internal-host", "::1"}).status().message(),
      HasSubstr("--internal-host: needs --internal-port"));
}

TEST(CoordinatorFlagsTest, PagedKvAndMetricsFlags) {
  absl::StatusOr<CoordinatorFlags> f = ParseCoordinatorFlags({"--model", "m"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->block_size, 0);
  EXPECT_FALSE(f->enable_prefix_caching.has_value());
  EXPECT_EQ(f->metrics_port, -1);
  EXPECT_EQ(f->metrics_prefix, "g4serve_");

  f = ParseCoordinatorFlags({"--model", "m", "--block-size", "32", "--num-global-pages=1000",
                             "--num_sliding_pages", "200", "--no-enable-prefix-caching",
                             "--metrics-port", "0", "--metrics-host", "0.0.0.0",
                             "--metrics-prefix", "vllm:", "--metrics-port-file", "/tmp/mp"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->block_size, 32);
  EXPECT_EQ(f->num_global_pages, 1000);
  EXPECT_EQ(f->num_sliding_pages, 200);
  EXPECT_EQ(f->enable_prefix_caching, std::optional<bool>(false));
  EXPECT_EQ(f->metrics_port, 0);
  EXPECT_EQ(f->metrics_host, "0.0.0.0");
  EXPECT_EQ(f->metrics_prefix, "vllm:");
  EXPECT_EQ(f->metrics_port_file, "/tmp/mp");

  f = ParseCoordinatorFlags({"--model", "m", "--no-enable-prefix-caching",
                             "--enable-prefix-caching"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->enable_prefix_caching, std::optional<bool>(true));
  f = ParseCoordinatorFlags({"--model", "m", "--enable-prefix-caching=false"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->enable_prefix_caching, std::optional<bool>(false));

  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--enable-prefix-caching=maybe"})
                  .status()
                  .message(),
              HasSubstr("--enable-prefix-caching"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--block-size", "-1"}).status().message(),
              HasSubstr("--block-size"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--metrics-port", "70000"})
                  .status()
                  .message(),
              HasSubstr("--metrics-port"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--metrics-port-file", "/tmp/x"})
                  .status()
                  .message(),
              HasSubstr("--metrics-port-file"));
}

TEST(CoordinatorFlagsTest, RejectsBadFlagsNamingThem) {
  EXPECT_THAT(ParseCoordinatorFlags({}).status().message(), HasSubstr("--model"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--bogus", "1"}).status().message(),
              HasSubstr("--bogus"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--tensor-parallel-size", "0"})
                  .status()
                  .message(),
              HasSubstr("--tensor-parallel-size"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--health-interval", "soon"})
                  .status()
                  .message(),
              HasSubstr("--health-interval"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model"}).status().message(), HasSubstr("needs a value"));
  EXPECT_TRUE(ParseCoordinatorFlags({"--help"})->help);
}

TEST(CoordinatorFlagsTest, DrainMigrationAndBatchInvarianceFlags) {
  absl::StatusOr<CoordinatorFlags> f = ParseCoordinatorFlags({"--model", "m"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->drain_timeout, absl::Seconds(30));
  EXPECT_EQ(f->migration_limit, 3);
  EXPECT_FALSE(f->batch_invariant);
  f = ParseCoordinatorFlags({"--model", "m", "--drain-timeout", "90s", "--migration_limit=0",
                             "--batch-invariant"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->drain_timeout, absl::Seconds(90));
  EXPECT_EQ(f->migration_limit, 0);
  EXPECT_TRUE(f->batch_invariant);
  f = ParseCoordinatorFlags({"--model", "m", "--batch-invariant=false"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_FALSE(f->batch_invariant);
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--drain-timeout", "soon"}).status().message(),
              HasSubstr("--drain-timeout"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--migration-limit", "-1"}).status().message(),
              HasSubstr("--migration-limit"));
  EXPECT_THAT(ParseCoordinatorFlags({"--model", "m", "--batch-invariant=maybe"}).status().message(),
              HasSubstr("--batch-invariant"));
}

// Every flag is in the usage, with its default.
TEST(CoordinatorFlagsTest, UsageListsEveryFlagWithItsDefault) {
  const std::string usage = CoordinatorUsage();
  for (const char* flag :
       {"--model DIR", "--served-model-name NAME", "--tensor-parallel-size N",
        "--expert-parallel-size N", "--num-replicas N", "--host HOST", "--port N",
        "--port-file PATH", "--http-port N", "--http-port-file PATH", "--max-num-seqs N",
        "--max-num-batched-tokens N", "--max-model-len N", "--max-queue N", "--block-size N",
        "--num-global-pages N", "--num-sliding-pages N", "--enable-prefix-caching",
        "--no-enable-prefix-caching", "--batch-invariant", "--metrics-port N",
        "--metrics-host HOST", "--metrics-prefix PREFIX", "--metrics-port-file PATH",
        "--collective-timeout DURATION", "--health-interval DURATION",
        "--health-timeout DURATION", "--load-timeout DURATION", "--drain-timeout DURATION",
        "--migration-limit N"}) {
    EXPECT_THAT(usage, HasSubstr(std::string("\n  ") + flag)) << flag;
  }
  EXPECT_THAT(usage, HasSubstr("(default 30s)"));
  EXPECT_THAT(usage, HasSubstr("(default 3)"));
}

}  // namespace
}  // namespace g4
