// g4-coordinator and g4-worker refuse to start, with one stderr line and exit code 1, when a
// port they are told to listen on is taken (never sharing it through SO_REUSEPORT), or when the
// model directory or the parallel plan cannot work (before any worker registers).
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"

namespace g4::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kModel[] = "tests/data/golden/dense";

std::string TempPath(const std::string& name) {
  return absl::StrCat(::testing::TempDir(), "/startup_test.", getpid(), ".", name);
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// Runs a command that must fail at start; returns its exit code and output.
struct Failure {
  int exit_code = -1;
  std::string log;
};
Failure RunToFailure(const std::vector<std::string>& argv, const std::string& name) {
  Process p;
  const std::string log = TempPath(name + ".log");
  std::remove(log.c_str());
  EXPECT_TRUE(p.Start(argv, log));
  Failure f;
  f.exit_code = p.Wait(absl::Seconds(30));  // -1 (and killed) if it kept running
  f.log = p.Log();
  std::remove(log.c_str());
  return f;
}

// A coordinator serving on picked ports (gRPC and metrics).
class RunningCoordinator {
 public:
  RunningCoordinator() {
    const std::string port_file = TempPath("coordinator.port");
    const std::string metrics_file = TempPath("coordinator.metrics_port");
    std::remove(port_file.c_str());
    std::remove(metrics_file.c_str());
    EXPECT_TRUE(
        process_.Start({G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--port-file",
                        port_file, "--metrics-port", "0", "--metrics-port-file", metrics_file},
                       TempPath("coordinator.log")));
    port_ = WaitForPortFile(port_file, absl::Seconds(30));
    metrics_port_ = WaitForPortFile(metrics_file, absl::Seconds(30));
    EXPECT_GT(port_, 0) << process_.Log();
    EXPECT_GT(metrics_port_, 0) << process_.Log();
  }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  bool Running() { return process_.Running(); }

 private:
  Process process_;
  int port_ = 0, metrics_port_ = 0;
};

TEST(PortInUseTest, CoordinatorPortsAreNeverShared) {
  RunningCoordinator first;
  Failure f = RunToFailure(
      {G4_COORDINATOR_BIN, "--model", kModel, "--port", std::to_string(first.port())}, "grpc");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, StartsWith("g4-coordinator: --port: cannot listen on 127.0.0.1:"));
  EXPECT_THAT(f.log, HasSubstr("Address already in use"));

  f = RunToFailure({G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--metrics-port",
                    std::to_string(first.metrics_port())},
                   "metrics");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, StartsWith("g4-coordinator: --metrics-port: "));
  EXPECT_THAT(f.log, HasSubstr("Address already in use"));
  EXPECT_TRUE(first.Running());
}

TEST(PortInUseTest, WorkerPortsAreNeverShared) {
  RunningCoordinator coordinator;
  Process worker;
  const std::string log = TempPath("worker.log");
  std::remove(log.c_str());
  ASSERT_TRUE(worker.Start({G4_WORKER_BIN, "--coordinator", coordinator.address(), "--port", "0",
                            "--metrics-port", "0", "--threads", "1"},
                           log));
  // "g4-worker listening on 127.0.0.1:P" and "g4-worker metrics on 127.0.0.1:M".
  auto port_after = [&](const std::string& prefix) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      const std::string text = worker.Log();
      const size_t at = text.find(prefix);
      if (at != std::string::npos) {
        const size_t colon = text.find(':', at + prefix.size());
        const size_t end = text.find('\n', at);
        if (colon != std::string::npos && end != std::string::npos) {
          return std::stoi(text.substr(colon + 1, end - colon - 1));
        }
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return -1;
  };
  const int port = port_after("listening on ");
  const int metrics_port = port_after("metrics on ");
  ASSERT_GT(port, 0) << worker.Log();
  ASSERT_GT(metrics_port, 0) << worker.Log();

  Failure f = RunToFailure(
      {G4_WORKER_BIN, "--coordinator", coordinator.address(), "--port", std::to_string(port)},
      "worker-grpc");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("Address already in use"));

  f = RunToFailure({G4_WORKER_BIN, "--coordinator", coordinator.address(), "--port", "0",
                    "--metrics-port", std::to_string(metrics_port)},
                   "worker-metrics");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("metrics"));
  EXPECT_THAT(f.log, HasSubstr("Address already in use"));
  std::remove(log.c_str());
}

TEST(StartupCheckTest, ModelWithoutWeightsStopsTheCoordinator) {
  const std::string dir = TempPath("noweights");
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(std::string(kModel) + "/config.json", dir + "/config.json",
                             std::filesystem::copy_options::overwrite_existing);
  Failure f = RunToFailure({G4_COORDINATOR_BIN, "--model", dir, "--port", "0"}, "noweights");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, StartsWith("g4-coordinator: --model: "));
  EXPECT_THAT(f.log, HasSubstr("model.safetensors"));
}

TEST(StartupCheckTest, BadSecurityFlagsStopTheCoordinator) {
  Failure f = RunToFailure(
      {G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--protect-health-and-metrics"},
      "protect");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("--protect-health-and-metrics: needs an API key"));
  f = RunToFailure({G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--api-key",
                    "sk with space"},
                   "badkey");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("--api-key: API key with whitespace"));
  EXPECT_THAT(f.log, ::testing::Not(HasSubstr("sk with space")));
  f = RunToFailure({G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--api-key-file",
                    TempPath("no-such-keys")},
                   "nokeyfile");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("--api-key-file: cannot read"));
}

TEST(StartupCheckTest, APlanThatCannotWorkStopsTheCoordinator) {
  Failure f = RunToFailure(
      {G4_COORDINATOR_BIN, "--model", kModel, "--port", "0", "--tensor-parallel-size", "3"}, "tp3");
  EXPECT_EQ(f.exit_code, 1) << f.log;
  EXPECT_EQ(Lines(f.log), 1) << f.log;
  EXPECT_THAT(f.log, HasSubstr("--tensor-parallel-size 3: num_attention_heads = 4 is not "
                               "divisible by 3"));
}

}  // namespace
}  // namespace g4::testing
