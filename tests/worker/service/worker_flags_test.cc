#include "worker/service/worker_flags.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

TEST(WorkerFlagsTest, ParsesEveryFlag) {
  absl::StatusOr<WorkerFlags> f = ParseWorkerFlags({"--coordinator",
                                                    "10.0.0.1:50051",
                                                    "--host=10.0.0.2",
                                                    "--port",
                                                    "7000",
                                                    "--threads",
                                                    "4",
                                                    "--register-timeout",
                                                    "90s",
                                                    "--heartbeat-interval",
                                                    "0",
                                                    "--gloo-interface",
                                                    "eth0",
                                                    "--metrics-port",
                                                    "9401",
                                                    "--metrics-host",
                                                    "0.0.0.0",
                                                    "--metrics-prefix",
                                                    "vllm:",
                                                    "--served-model-name",
                                                    "gemma",
                                                    "--replica-group",
                                                    "g1",
                                                    "--replica_rank",
                                                    "1",
                                                    "--drain-timeout",
                                                    "45s"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->server.coordinator, "10.0.0.1:50051");
  EXPECT_EQ(f->server.host, "10.0.0.2");
  EXPECT_EQ(f->server.port, 7000);
  EXPECT_EQ(f->threads, 4);
  EXPECT_EQ(f->server.register_timeout, absl::Seconds(90));
  EXPECT_EQ(f->server.heartbeat_interval, absl::ZeroDuration());
  EXPECT_EQ(f->server.gloo_interface, "eth0");
  EXPECT_EQ(f->server.metrics_port, 9401);
  EXPECT_EQ(f->server.metrics_host, "0.0.0.0");
  EXPECT_EQ(f->server.metrics_prefix, "vllm:");
  EXPECT_EQ(f->server.metrics_model_name, "gemma");
  EXPECT_EQ(f->server.replica_group, "g1");
  EXPECT_EQ(f->server.replica_rank, 1);
  EXPECT_EQ(f->drain_timeout, absl::Seconds(45));
}

TEST(WorkerFlagsTest, DefaultsMatchTheServerOptions) {
  absl::StatusOr<WorkerFlags> f = ParseWorkerFlags({"--coordinator", "c:1"});
  ASSERT_TRUE(f.ok()) << f.status();
  const WorkerServerOptions defaults;
  EXPECT_EQ(f->server.host, defaults.host);
  EXPECT_EQ(f->server.port, 0);
  EXPECT_EQ(f->server.metrics_port, -1);
  EXPECT_EQ(f->server.register_timeout, defaults.register_timeout);
  EXPECT_EQ(f->server.heartbeat_interval, defaults.heartbeat_interval);
  EXPECT_EQ(f->server.replica_rank, -1);
  EXPECT_EQ(f->drain_timeout, absl::Seconds(30));
}

TEST(WorkerFlagsTest, ErrorsNameTheFlag) {
  EXPECT_THAT(ParseWorkerFlags({}).status().message(), HasSubstr("--coordinator"));
  EXPECT_THAT(ParseWorkerFlags({"--coordinator", "c:1", "--port", "65536"}).status().message(),
              HasSubstr("--port"));
  EXPECT_THAT(
      ParseWorkerFlags({"--coordinator", "c:1", "--metrics-prefix", "9bad"}).status().message(),
      HasSubstr("--metrics-prefix"));
  EXPECT_THAT(ParseWorkerFlags({"--coordinator", "c:1", "--replica-rank", "0"}).status().message(),
              HasSubstr("--replica-rank needs --replica-group"));
  EXPECT_THAT(
      ParseWorkerFlags({"--coordinator", "c:1", "--register-timeout", "0s"}).status().message(),
      HasSubstr("--register-timeout"));
  // 0 is allowed (no drain), a negative or unreadable duration is not.
  absl::StatusOr<WorkerFlags> no_drain =
      ParseWorkerFlags({"--coordinator", "c:1", "--drain-timeout", "0"});
  ASSERT_TRUE(no_drain.ok()) << no_drain.status();
  EXPECT_EQ(no_drain->drain_timeout, absl::ZeroDuration());
  EXPECT_THAT(
      ParseWorkerFlags({"--coordinator", "c:1", "--drain-timeout", "-1s"}).status().message(),
      HasSubstr("--drain-timeout"));
  EXPECT_THAT(
      ParseWorkerFlags({"--coordinator", "c:1", "--drain-timeout", "soon"}).status().message(),
      HasSubstr("--drain-timeout"));
  EXPECT_THAT(ParseWorkerFlags({"--coordinator", "c:1", "--bogus"}).status().message(),
              HasSubstr("unknown flag \"--bogus\""));
  EXPECT_TRUE(ParseWorkerFlags({"-h"})->help);
}

// Every flag the worker accepts is in its --help, with a default or "required".
TEST(WorkerFlagsTest, UsageDocumentsEveryFlag) {
  const std::string usage = WorkerUsage();
  for (const char* flag :
       {"--coordinator HOST:PORT", "--host ADDR", "--port N", "--threads N",
        "--register-timeout DURATION", "--heartbeat-interval D", "--gloo-interface IFACE",
        "--metrics-port N", "--metrics-host ADDR", "--metrics-prefix PREFIX",
        "--served-model-name NAME", "--replica-group NAME", "--replica-rank N",
        "--drain-timeout D"}) {
    EXPECT_THAT(usage, HasSubstr(flag));
  }
  EXPECT_THAT(usage, HasSubstr("(default 2s)"));
  EXPECT_THAT(usage, HasSubstr("(default 30s)"));
  EXPECT_THAT(usage, HasSubstr("(required)"));
}

}  // namespace
}  // namespace g4
