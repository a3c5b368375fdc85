// Every panel and alert of deploy/monitoring works on live data: a real Prometheus scrapes a real
// cluster (g4-coordinator + 4 g4-workers, two TP=2 replicas) under g4-load traffic; then one
// worker of replica 1 is killed, so that a replica is out of service as well (the expressions
// about replicas that are not READY need one), and check_monitoring_queries.py evaluates each
// dashboard target and each alert expression through Prometheus' HTTP API: each must return at
// least one series. Bounded to ~3 minutes; skipped when prometheus is not installed.
//
// With G4_DASHBOARD_RENDER_DIR set, tools/monitoring/render_panels.py then draws the latency and
// capacity panels from the same Prometheus into that directory (how docs/images/ were made).
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/integration/process.h"
#include "tests/integration/prometheus_process.h"

namespace g4 {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

TEST(DashboardTest, EveryPanelAndAlertReturnsSeriesOnLiveData) {
  const std::string prometheus = testing::PrometheusBinary();
  if (prometheus.empty()) GTEST_SKIP() << "prometheus not installed (tools/setup.sh installs it)";

  ClusterOptions o;
  o.metrics = true;
  o.workers = 4;
  Cluster cluster(o);
  ASSERT_TRUE(cluster.Start(2));
  std::vector<std::string> workers;
  for (int i = 0; i < o.workers; ++i) {
    workers.push_back(cluster.WorkerMetricsAddress(i));
    ASSERT_FALSE(workers.back().empty()) << cluster.Logs();
  }
  // Labels as the PodMonitor would attach them (the alerts group by namespace, and
  // G4ServeCoordinatorDown selects container="coordinator").
  testing::Process prom;
  const int port = testing::StartPrometheus(
      prometheus, cluster.dir() + "/prometheus",
      {{"coordinator",
        {absl::StrCat("127.0.0.1:", cluster.metrics_port())},
        {{"namespace", "g4test"}, {"container", "coordinator"}}},
       {"worker", workers, {{"namespace", "g4test"}, {"container", "worker"}}}},
      &prom);
  ASSERT_GT(port, 0);

  const std::string dir = cluster.dir();
  testing::Process load;
  ASSERT_TRUE(load.Start({G4_LOAD_BIN, "--server", cluster.address(), "--num-requests", "48",
                          "--request-rate", "6", "--prompt-len", "48", "--output-len", "24",
                          "--vocab", "512", "--seed", "3", "--quiet"},
                         dir + "/load.log"));
  EXPECT_EQ(load.Wait(absl::Seconds(120)), 0) << load.Log();
  // Replica 1 out of service (UNAVAILABLE, reason unreachable, until the test ends): the
  // coordinator notices within a few health rounds, before the checker's deadline.
  const int leader1 = cluster.LeaderOf(1);
  ASSERT_GE(leader1, 0) << cluster.Logs();
  cluster.KillWorker(leader1);

  // Rates over 30 s windows still see the traffic that just ended.
  testing::Process check;
  ASSERT_TRUE(check.Start({"/usr/bin/env", "python3",
                           G4_SOURCE_DIR "/tests/integration/check_monitoring_queries.py",
                           "--prometheus", absl::StrCat("127.0.0.1:", port), "--monitoring",
                           G4_SOURCE_DIR "/deploy/monitoring", "--rate-interval", "30s",
                           "--deadline-seconds", "40"},
                          dir + "/check.log"));
  EXPECT_EQ(check.Wait(absl::Seconds(90)), 0) << check.Log() << prom.Log();
  std::cout << check.Log();

  if (const char* render = std::getenv("G4_DASHBOARD_RENDER_DIR"); render != nullptr) {
    testing::Process draw;
    ASSERT_TRUE(draw.Start({"/usr/bin/env", "python3",
                            G4_SOURCE_DIR "/tools/monitoring/render_panels.py", "--prometheus",
                            absl::StrCat("127.0.0.1:", port), "--dashboard",
                            G4_SOURCE_DIR "/deploy/monitoring/g4serve-dashboard.json", "--out",
                            render, "--minutes", "2"},
                           dir + "/render.log"));
    EXPECT_EQ(draw.Wait(absl::Seconds(60)), 0) << draw.Log();
  }
  prom.Kill(SIGTERM);
}

}  // namespace
}  // namespace g4
