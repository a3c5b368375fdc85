// The coordinator's serving metrics end to end in one process: fake workers (scripted Generate
// streams with queue_seconds, scripted Health engine stats), the fleet's health loop feeding
// FleetMetrics, gRPC and HTTP requests through the shared generation path, and /metrics scraped
// over a raw socket, checked value by value and linted with promtool.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/metrics/coordinator_metrics.h"
#include "common/metrics/metrics_server.h"
#include "coordinator/api/inference_service.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/http/http_server.h"
#include "coordinator/metrics/fleet_metrics.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/common/metrics/test_util.h"
#include "tests/coordinator/fake_worker.h"

namespace g4 {
namespace {

using ::g4::testing::Codec;
using ::g4::testing::TinyConfig;
using ::g4::testing::Eventually;

using ::g4::testing::FakeWorker;
namespace pb = ::g4serve::v1;
namespace wpb = ::g4serve::worker::v1;

// The value of the first sample of `name` (exact metric name) whose label set contains every
// `labels` substring; NaN-free: -1 when absent.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels = {}) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::StartsWith(line, name)) continue;
    const char next = line.size() > name.size() ? line[name.size()] : '\0';
    if (next != '{' && next != ' ') continue;
    bool match = true;
    for (const std::string& l : labels) match = match && absl::StrContains(line, l);
    if (!match) continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (absl::SimpleAtod(line.substr(space + 1), &v)) return v;
  }
  return -1;
}

wpb::HealthResponse Stats(int running, int waiting, double kv_global, double kv_sliding,
                          int64_t queried, int64_t hits, int64_t preemptions) {
  wpb::HealthResponse h;
  h.set_running(running);
  h.set_waiting(waiting);
  h.set_kv_usage_global(kv_global);
  h.set_kv_usage_sliding(kv_sliding);
  h.set_prefix_cache_queried_tokens(queried);
  h.set_prefix_cache_hit_tokens(hits);
  h.set_preemptions(preemptions);
  return h;
}

class CoordinatorMetricsTest : public ::g4::testing::CoordinatorFixture {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<MetricsServer>> ms = MetricsServer::Start("127.0.0.1", 0);
    ASSERT_TRUE(ms.ok()) << ms.status();
    metrics_server_ = *std::move(ms);
    CoordinatorMetricsOptions mo;
    mo.model_name = "dense";
    mo.max_model_len = 4096;
    absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> m =
        CoordinatorMetrics::Create(*metrics_server_->registry(), mo);
    ASSERT_TRUE(m.ok()) << m.status();
    metrics_ = *std::move(m);
    fleet_metrics_ = std::make_unique<FleetMetrics>(metrics_.get());

    FleetOptions o = TestFleetOptions();
    o.health_interval = absl::Milliseconds(50);
    o.health_observer = [fm = fleet_metrics_.get()](const std::vector<WorkerHealth>& round) {
      fm->Observe(round);
    };
    InferenceOptions io = TestInferenceOptions();
    io.metrics = metrics_.get();
    StartCoordinator(o, io, Codec(), HttpServerOptions());
  }

  grpc::Status GrpcGenerate(int* tokens) {
    pb::GenerateRequest req;
    req.set_text("Hello");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse r;
    while (reader->Read(&r)) *tokens += r.tokens_size();
    return reader->Finish();
  }

  std::string Scrape() {
    absl::StatusOr<testing::HttpResponse> r =
        testing::HttpGet(metrics_server_->port(), "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->status, 200);
    return r->body;
  }

  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<FleetMetrics> fleet_metrics_;
};

TEST_F(CoordinatorMetricsTest, RequestsAndEngineStatsReachTheScrape) {
  StartWorkers(2);
  workers_[0]->SetHealthStats(Stats(2, 1, 0.5, 0.25, 100, 40, 1));
  workers_[1]->SetHealthStats(Stats(1, 3, 0.3, 0.75, 50, 10, 2));

  // Two gRPC requests, one HTTP non-streaming, one HTTP streaming: 4 tokens each (fake script).
  int relayed = 0;
  for (int i = 0; i < 2; ++i) {
    grpc::Status s = GrpcGenerate(&relayed);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auto r = client_->Post("/v1/completions", R"({"prompt":"Hello","max_tokens":4})",
                         "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  relayed += 4;
  r = client_->Post("/v1/completions", R"({"prompt":"Hello","stream":true})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  relayed += 4;
  ASSERT_EQ(relayed, 16);

  // A failure: every worker's queue is full (RESOURCE_EXHAUSTED is not retried).
  for (auto& w : workers_) w->generate_queue_full = true;
  int none = 0;
  EXPECT_EQ(GrpcGenerate(&none).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Counters move on: worker 0 by (+60 queried, +30 hits, +1 preemption); worker 1 restarted
  // (its counters went down: the new values are the increase).
  std::string text;
  ASSERT_TRUE(Eventually([&] {
    text = Scrape();
    return Sample(text, "g4serve_prefix_cache_queries_total") == 150 &&
           Sample(text, "g4serve_num_requests_running") == 3;
  })) << text;
  workers_[0]->SetHealthStats(Stats(2, 1, 0.5, 0.25, 160, 70, 2));
  workers_[1]->SetHealthStats(Stats(1, 3, 0.3, 0.75, 20, 5, 0));
  ASSERT_TRUE(Eventually([&] {
    text = Scrape();
    return Sample(text, "g4serve_prefix_cache_queries_total") == 230;
  })) << text;

  const std::vector<std::string> model = {"model_name=\"dense\""};
  EXPECT_EQ(Sample(text, "g4serve_time_to_first_token_seconds_count", model), 4);
  EXPECT_EQ(Sample(text, "g4serve_e2e_request_latency_seconds_count", model), 4);
  EXPECT_EQ(Sample(text, "g4serve_request_time_per_output_token_seconds_count"), 4);
  // The fake streams 3 messages per request: 2 inter-token observations each.
  EXPECT_EQ(Sample(text, "g4serve_inter_token_latency_seconds_count"), 8);
  EXPECT_EQ(Sample(text, "g4serve_request_queue_time_seconds_count"), 4);
  EXPECT_DOUBLE_EQ(Sample(text, "g4serve_request_queue_time_seconds_sum"), 1.0);
  EXPECT_EQ(Sample(text, "g4serve_generation_tokens_total", model), relayed);
  EXPECT_EQ(Sample(text, "g4serve_request_generation_tokens_sum"), relayed);
  EXPECT_EQ(Sample(text, "g4serve_request_generation_tokens_count"), 4);
  EXPECT_GT(Sample(text, "g4serve_prompt_tokens_total"), 0);
  EXPECT_EQ(Sample(text, "g4serve_request_prompt_tokens_count"), 4);
  EXPECT_EQ(Sample(text, "g4serve_request_success_total", {"finished_reason=\"length\""}), 4);
  EXPECT_EQ(Sample(text, "g4serve_request_success_total", {"finished_reason=\"stop\""}), 0);
  EXPECT_EQ(Sample(text, "g4serve_request_success_total", {"finished_reason=\"abort\""}), 0);
  EXPECT_EQ(Sample(text, "g4serve_request_failure_total", {"reason=\"resource_exhausted\""}), 1);

  EXPECT_EQ(Sample(text, "g4serve_num_requests_running", model), 3);
  EXPECT_EQ(Sample(text, "g4serve_num_requests_waiting", model), 4);
  EXPECT_DOUBLE_EQ(Sample(text, "g4serve_kv_cache_pool_usage_perc", {"pool=\"full\""}), 0.4);
  EXPECT_DOUBLE_EQ(Sample(text, "g4serve_kv_cache_pool_usage_perc", {"pool=\"sliding\""}), 0.5);
  EXPECT_DOUBLE_EQ(Sample(text, "g4serve_kv_cache_usage_perc"), 0.5);
  // 100 + 50, then +60 (worker 0) and +20 (worker 1 restarted).
  EXPECT_EQ(Sample(text, "g4serve_prefix_cache_queries_total"), 230);
  EXPECT_EQ(Sample(text, "g4serve_prefix_cache_hits_total"), 40 + 10 + 30 + 5);
  EXPECT_EQ(Sample(text, "g4serve_num_preemptions_total"), 1 + 2 + 1 + 0);

  // promtool lints the scrape.
  const std::string promtool =
      testing::FindExecutable({"/usr/bin/promtool", "/usr/local/bin/promtool"});
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed";
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::filesystem::path file = dir / absl::StrCat("g4_coord_metrics_", getpid(), ".txt");
  const std::filesystem::path log = dir / absl::StrCat("g4_coord_promtool_", getpid(), ".log");
  std::ofstream(file) << text;
  const int rc = std::system(
      absl::StrCat(promtool, " check metrics < ", file.string(), " > ", log.string(), " 2>&1")
          .c_str());
  std::ifstream in(log);
  const std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out;
  std::filesystem::remove(file);
  std::filesystem::remove(log);
}

TEST_F(CoordinatorMetricsTest, GaugesDropToZeroWhenNoReplicaIsReady) {
  StartWorkers(1);
  workers_[0]->SetHealthStats(Stats(5, 6, 0.9, 0.1, 0, 0, 0));
  std::string text;
  ASSERT_TRUE(Eventually([&] {
    text = Scrape();
    return Sample(text, "g4serve_num_requests_running") == 5;
  })) << text;
  EXPECT_DOUBLE_EQ(Sample(text, "g4serve_kv_cache_usage_perc"), 0.9);
  workers_[0]->health_reports_failed = true;  // the replica becomes UNAVAILABLE
  ASSERT_TRUE(Eventually([&] {
    text = Scrape();
    return Sample(text, "g4serve_num_requests_running") == 0 &&
           Sample(text, "g4serve_kv_cache_usage_perc") == 0;
  })) << text;
  EXPECT_EQ(Sample(text, "g4serve_num_requests_waiting"), 0);
}

}  // namespace
}  // namespace g4
