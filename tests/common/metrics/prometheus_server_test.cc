// A real Prometheus server (the Debian `prometheus` package) on loopback scrapes a MetricsServer
// in this process (coordinator metrics) and a g4-worker process started with --metrics-port 0,
// and the test reads metrics back through Prometheus' HTTP API (/api/v1/query). Bounded to ~30 s;
// skipped when prometheus is not installed (tools/setup.sh installs it).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/metrics/coordinator_metrics.h"
#include "common/metrics/metrics_server.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/metrics/test_util.h"

namespace g4 {
namespace {

using ::g4::testing::QueryFirstValue;

// A child process with stdout+stderr to `log`; SIGTERM (then SIGKILL after 5 s) on destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() { Stop(); }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (absl::Now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}


TEST(PrometheusServerTest, ScrapesCoordinatorMetricsAndAWorker) {
  const std::string prometheus = testing::FindExecutable({"/usr/bin/prometheus", "/usr/local/bin/prometheus"});
  if (prometheus.empty()) GTEST_SKIP() << "prometheus not installed (tools/setup.sh installs it)";

  // Coordinator metrics in this process.
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status();
  CoordinatorMetricsOptions co;
  co.model_name = "gemma-4-test";
  absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> metrics =
      CoordinatorMetrics::Create(*(*server)->registry(), co);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  (*metrics)->AddPromptTokens(42);
  (*metrics)->SetKvUsage(0.5);
  (*metrics)->ObserveTtft(0.05);

  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    absl::StrCat("g4_prometheus_test_", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "data");
  struct Cleanup {
    std::filesystem::path dir;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } cleanup{dir};

  // A g4-worker with metrics on a picked port; its coordinator does not exist, so it keeps
  // retrying registration while serving /metrics.
  std::unique_ptr<Child> worker;
  std::string worker_target;
#ifdef G4_WORKER_BINARY
  {
    const int dead_port = testing::FreeLoopbackPort();
    worker = std::make_unique<Child>(
        std::vector<std::string>{G4_WORKER_BINARY, "--coordinator",
                                 absl::StrCat("127.0.0.1:", dead_port), "--register-timeout",
                                 "120s", "--metrics-port", "0", "--served-model-name",
                                 "gemma-4-test"},
        (dir / "worker.log").string());
    const std::regex re("metrics on ([0-9.]+):([0-9]+)");
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    std::smatch m;
    std::string log;
    while (absl::Now() < deadline) {
      log = ReadFile(dir / "worker.log");
      if (std::regex_search(log, m, re)) break;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(std::regex_search(log, m, re)) << "g4-worker log:\n" << log;
    worker_target = absl::StrCat(m[1].str(), ":", m[2].str());
  }
#endif

  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n"
      << "  - job_name: coordinator\n    static_configs:\n      - targets: ['"
      << (*server)->address() << "']\n"
      << (worker_target.empty()
              ? std::string()
              : absl::StrCat("  - job_name: worker\n    static_configs:\n      - targets: ['",
                             worker_target, "']\n"));
  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  Child prom({prometheus, absl::StrCat("--config.file=", (dir / "prometheus.yml").string()),
              absl::StrCat("--storage.tsdb.path=", (dir / "data").string()),
              absl::StrCat("--web.listen-address=127.0.0.1:", port)},
             (dir / "prometheus.log").string());

  std::string tokens, kv, worker_up;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(prom.running()) << "prometheus exited:\n" << ReadFile(dir / "prometheus.log");
    tokens = QueryFirstValue(port, "g4serve_prompt_tokens_total{model_name=\"gemma-4-test\"}");
    kv = QueryFirstValue(port, "g4serve_kv_cache_usage_perc");
    if (!worker_target.empty()) worker_up = QueryFirstValue(port, "up{job=\"worker\"}");
    if (!tokens.empty() && !kv.empty() && (worker_target.empty() || worker_up == "1")) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_EQ(tokens, "42") << "prometheus log:\n" << ReadFile(dir / "prometheus.log");
  EXPECT_EQ(kv, "0.5");
  EXPECT_EQ(QueryFirstValue(port, "up{job=\"coordinator\"}"), "1");
  if (!worker_target.empty()) {
    EXPECT_EQ(worker_up, "1") << "g4-worker log:\n" << ReadFile(dir / "worker.log");
  }
  // A histogram through PromQL, the way dashboards read it.
  EXPECT_EQ(QueryFirstValue(port, "g4serve_time_to_first_token_seconds_count"), "1");
  prom.Stop();
  if (worker) worker->Stop();
}

}  // namespace
}  // namespace g4
