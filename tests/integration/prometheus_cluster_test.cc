// A real Prometheus server (the Debian `prometheus` package) on loopback scrapes a real cluster
// (g4-coordinator + 2 g4-workers, each with --metrics-port 0) and the test reads metrics back
// through Prometheus' HTTP API: the coordinator's generation tokens and a worker's step
// histogram. Bounded to ~60 s; skipped when prometheus is not installed.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/metrics/test_util.h"
#include "tests/integration/cluster.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_process.h"

namespace g4 {
namespace {

using ::g4::testing::QueryFirstValue;

using testing::Cluster;
using testing::ClusterOptions;


double ToDouble(const std::string& s) { return s.empty() ? -1 : std::atof(s.c_str()); }

TEST(PrometheusClusterTest, PrometheusScrapesCoordinatorAndWorkers) {
  const std::string prometheus =
      testing::PrometheusBinary();
  if (prometheus.empty()) GTEST_SKIP() << "prometheus not installed (tools/setup.sh installs it)";

  ClusterOptions o;
  o.workers = 2;
  o.tensor_parallel_size = 2;
  o.metrics = true;
  Cluster cluster(o);
  ASSERT_TRUE(cluster.Start(1));
  const std::string coordinator_target = absl::StrCat("127.0.0.1:", cluster.metrics_port());
  std::vector<std::string> worker_targets;
  for (int i = 0; i < 2; ++i) {
    worker_targets.push_back(cluster.WorkerMetricsAddress(i));
    ASSERT_FALSE(worker_targets.back().empty()) << cluster.Logs();
  }

  // A few tokens so that the counters move.
  g4serve::v1::GenerateRequest req;
  for (int32_t id : {2, 100, 200, 300}) req.mutable_token_ids()->add_ids(id);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(4);
  req.mutable_stopping()->set_ignore_eos(true);
  const Cluster::Result result = cluster.Generate(req);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message() << cluster.Logs();
  ASSERT_EQ(result.tokens.size(), 4u);

  testing::Process prom;
  const int port = testing::StartPrometheus(
      prometheus, cluster.dir() + "/prometheus",
      {{"coordinator", {coordinator_target}, {}}, {"worker", worker_targets, {}}}, &prom);
  ASSERT_GT(port, 0);

  std::string tokens, steps, workers_up, coordinator_up;
  const absl::Time deadline = absl::Now() + absl::Seconds(40);
  while (absl::Now() < deadline) {
    tokens = QueryFirstValue(port, "sum(g4serve_generation_tokens_total)");
    steps = QueryFirstValue(port, "sum(g4serve_worker_step_duration_seconds_count)");
    workers_up = QueryFirstValue(port, "sum(up{job=\"worker\"})");
    coordinator_up = QueryFirstValue(port, "up{job=\"coordinator\"}");
    if (ToDouble(tokens) >= 4 && ToDouble(steps) > 0 && workers_up == "2" &&
        coordinator_up == "1") {
      break;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_EQ(coordinator_up, "1") << prom.Log();
  EXPECT_EQ(workers_up, "2") << prom.Log();
  EXPECT_EQ(ToDouble(tokens), 4) << prom.Log();
  EXPECT_GT(ToDouble(steps), 0) << prom.Log();
  EXPECT_EQ(QueryFirstValue(port, "g4serve_time_to_first_token_seconds_count"), "1");
  EXPECT_EQ(QueryFirstValue(
                port, "g4serve_request_success_total{finished_reason=\"length\"}"),
            "1");
  prom.Kill(SIGTERM);
}

}  // namespace
}  // namespace g4
