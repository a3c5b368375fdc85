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
  EXPECT_THAT(ParseCoordinatorFlags({"--model"}).status().message(), HasSubstr("missing value"));
  EXPECT_TRUE(ParseCoordinatorFlags({"--help"})->help);
}

}  // namespace
}  // namespace g4
