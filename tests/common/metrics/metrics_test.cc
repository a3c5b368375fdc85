// CoordinatorMetrics / WorkerMetrics names, labels and buckets (through the text exposition and
// the collected families), and MetricsServer scraped over HTTP and linted by promtool.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/coordinator_metrics.h"
#include "common/metrics/metrics_server.h"
#include "common/metrics/worker_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "tests/common/metrics/test_util.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const prometheus::MetricFamily* FindFamily(const std::vector<prometheus::MetricFamily>& families,
                                           const std::string& name) {
  for (const auto& f : families) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::vector<double> UpperBounds(const prometheus::ClientMetric& m) {
  std::vector<double> out;
  for (const auto& b : m.histogram.bucket) out.push_back(b.upper_bound);
  return out;
}

std::string LabelValue(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label) {
    if (l.name == name) return l.value;
  }
  return "<none>";
}

std::unique_ptr<CoordinatorMetrics> MakeCoordinator(prometheus::Registry& registry,
                                                    const std::string& prefix = "g4serve_") {
  CoordinatorMetricsOptions o;
  o.prefix = prefix;
  o.model_name = "gemma-4-test";
  o.max_model_len = 1000;
  absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> m = CoordinatorMetrics::Create(registry, o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

TEST(BucketsTest, MatchVllm) {
  EXPECT_EQ(TtftBuckets().size(), 22u);
  EXPECT_EQ(TtftBuckets().front(), 0.001);
  EXPECT_EQ(TtftBuckets().back(), 2560.0);
  EXPECT_EQ(InterTokenLatencyBuckets().size(), 19u);
  EXPECT_EQ(InterTokenLatencyBuckets().back(), 80.0);
  EXPECT_EQ(RequestLatencyBuckets().size(), 21u);
  EXPECT_EQ(RequestLatencyBuckets().front(), 0.3);
  EXPECT_EQ(RequestLatencyBuckets().back(), 7680.0);
  EXPECT_EQ(Buckets125(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(Buckets125(4), (std::vector<double>{1, 2}));
  for (const auto* b : {&TtftBuckets(), &InterTokenLatencyBuckets(), &RequestLatencyBuckets(),
                        &WorkerStepBuckets(), &CollectiveBuckets()}) {
    EXPECT_TRUE(std::is_sorted(b->begin(), b->end()));
  }
}

TEST(CoordinatorMetricsTest, NamesTypesAndLabels) {
  prometheus::Registry registry;
  auto m = MakeCoordinator(registry);
  ASSERT_NE(m, nullptr);
  m->ObserveTtft(0.03);
  m->ObserveInterTokenLatency(0.02);
  m->ObserveTimePerOutputToken(0.02);
  m->ObserveE2e(1.2);
  m->ObserveQueueTime(0.1);
  m->ObservePrefillTime(0.2);
  m->ObserveDecodeTime(1.0);
  m->ObserveInferenceTime(1.1);
  m->ObserveRequestPromptTokens(17);
  m->ObserveRequestGenerationTokens(3);
  m->AddPromptTokens(17);
  m->AddGenerationTokens(3);
  m->AddGenerationTokens(-5);  // ignored
  m->AddPrefixCacheQueries(17);
  m->AddPrefixCacheHits(16);
  m->AddPreemptions();
  m->RequestFinished(FinishedReason::kLength);
  m->RequestFinished(FinishedReason::kLength);
  m->RequestFailed("unavailable");
  m->SetRunning(4);
  m->SetWaiting(2);
  m->SetKvUsage(0.25);
  m->SetKvPoolUsage("full", 0.25);
  m->SetKvPoolUsage("sliding", 0.5);
  m->SetCacheConfigInfo({{"block_size", "16"}, {"enable_prefix_caching", "True"}, {"bad-name", "x"}});

  const std::string text = SerializeMetricsText(registry);
  const std::string l = "model_name=\"gemma-4-test\"";
  for (const char* h : {"time_to_first_token_seconds", "inter_token_latency_seconds",
                        "request_time_per_output_token_seconds", "e2e_request_latency_seconds",
                        "request_queue_time_seconds", "request_prefill_time_seconds",
                        "request_decode_time_seconds", "request_inference_time_seconds",
                        "request_prompt_tokens", "request_generation_tokens"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE g4serve_", h, " histogram"))) << h;
    EXPECT_THAT(text, HasSubstr(absl::StrCat("g4serve_", h, "_count{", l, "} 1"))) << h;
  }
  for (const char* c : {"prompt_tokens_total", "generation_tokens_total",
                        "prefix_cache_queries_total", "prefix_cache_hits_total",
                        "num_preemptions_total", "request_success_total",
                        "request_failure_total"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE g4serve_", c, " counter"))) << c;
  }
  for (const char* g : {"num_requests_running", "num_requests_waiting", "kv_cache_usage_perc",
                        "kv_cache_pool_usage_perc", "cache_config_info", "replicas_ready",
                        "replicas"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE g4serve_", g, " gauge"))) << g;
  }
  EXPECT_THAT(text, HasSubstr("g4serve_prompt_tokens_total{" + l + "} 17"));
  EXPECT_THAT(text, HasSubstr("g4serve_generation_tokens_total{" + l + "} 3"));
  EXPECT_THAT(text, HasSubstr("g4serve_prefix_cache_hits_total{" + l + "} 16"));
  EXPECT_THAT(text, HasSubstr("g4serve_num_preemptions_total{" + l + "} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_request_success_total{finished_reason=\"length\"," + l +
                              "} 2"));
  EXPECT_THAT(text, HasSubstr("g4serve_request_success_total{finished_reason=\"stop\"," + l +
                              "} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_request_success_total{finished_reason=\"abort\"," + l +
                              "} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_request_failure_total{" + l + ",reason=\"unavailable\"} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_num_requests_running{" + l + "} 4"));
  EXPECT_THAT(text, HasSubstr("g4serve_num_requests_waiting{" + l + "} 2"));
  EXPECT_THAT(text, HasSubstr("g4serve_kv_cache_usage_perc{" + l + "} 0.25"));
  EXPECT_THAT(text, HasSubstr("g4serve_kv_cache_pool_usage_perc{" + l + ",pool=\"sliding\"} 0.5"));
  EXPECT_THAT(text, HasSubstr("g4serve_cache_config_info{block_size=\"16\","
                              "enable_prefix_caching=\"True\"," + l + "} 1"));
  EXPECT_THAT(text, Not(HasSubstr("bad-name")));

  // Buckets, from the collected families.
  const std::vector<prometheus::MetricFamily> families = registry.Collect();
  auto bounds = [&](const std::string& name) {
    const prometheus::MetricFamily* f = FindFamily(families, name);
    EXPECT_NE(f, nullptr) << name;
    if (f == nullptr || f->metric.empty()) return std::vector<double>{};
    std::vector<double> b = UpperBounds(f->metric[0]);
    EXPECT_EQ(b.back(), std::numeric_limits<double>::infinity()) << name;
    b.pop_back();
    return b;
  };
  EXPECT_EQ(bounds("g4serve_time_to_first_token_seconds"), TtftBuckets());
  EXPECT_EQ(bounds("g4serve_inter_token_latency_seconds"), InterTokenLatencyBuckets());
  EXPECT_EQ(bounds("g4serve_request_time_per_output_token_seconds"), InterTokenLatencyBuckets());
  EXPECT_EQ(bounds("g4serve_e2e_request_latency_seconds"), RequestLatencyBuckets());
  EXPECT_EQ(bounds("g4serve_request_queue_time_seconds"), RequestLatencyBuckets());
  EXPECT_EQ(bounds("g4serve_request_prompt_tokens"), Buckets125(1000));

  // A new cache config replaces the old series.
  m->SetCacheConfigInfo({{"block_size", "32"}});
  const std::string text2 = SerializeMetricsText(registry);
  EXPECT_THAT(text2, HasSubstr("g4serve_cache_config_info{block_size=\"32\"," + l + "} 1"));
  EXPECT_THAT(text2, Not(HasSubstr("block_size=\"16\"")));
}

// The counters users alert on exist at 0 before the first request: rate() and absent() see a
// series from the start, and the first failure is a change.
TEST(CoordinatorMetricsTest, LabelledCountersExistAtZeroFromTheStart) {
  prometheus::Registry registry;
  auto m = MakeCoordinator(registry);
  ASSERT_NE(m, nullptr);
  const std::string text = SerializeMetricsText(registry);
  const std::string l = "model_name=\"gemma-4-test\"";
  for (const char* reason : kRequestFailureReasons) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("g4serve_request_failure_total{", l, ",reason=\"",
                                             reason, "\"} 0")));
  }
  for (const char* reason : {"stop", "length", "abort"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("g4serve_request_success_total{finished_reason=\"",
                                             reason, "\",", l, "} 0")));
  }
  EXPECT_STREQ(RequestFailureReason(absl::StatusCode::kResourceExhausted), "resource_exhausted");
  EXPECT_STREQ(RequestFailureReason(absl::StatusCode::kDataLoss), "internal");
  EXPECT_STREQ(RequestFailureReason(absl::StatusCode::kUnknown), "other");
}

TEST(CoordinatorMetricsTest, ReplicaGauges) {
  prometheus::Registry registry;
  auto m = MakeCoordinator(registry);
  ASSERT_NE(m, nullptr);
  const std::string l = "model_name=\"gemma-4-test\"";
  // Both series exist (at 0) before the first SetReplicas, so `replicas_ready == 0` alerts.
  std::string text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("# TYPE g4serve_replicas_ready gauge"));
  EXPECT_THAT(text, HasSubstr("# TYPE g4serve_replicas gauge"));
  EXPECT_THAT(text, HasSubstr("g4serve_replicas_ready{" + l + "} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_replicas{" + l + "} 0"));
  m->SetReplicas(1, 3);
  text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("g4serve_replicas_ready{" + l + "} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_replicas{" + l + "} 3"));
  m->SetReplicas(-1, 2);  // clamped
  text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("g4serve_replicas_ready{" + l + "} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_replicas{" + l + "} 2"));
}

TEST(CoordinatorMetricsTest, VllmPrefixGivesVllmNames) {
  prometheus::Registry registry;
  auto m = MakeCoordinator(registry, "vllm:");
  ASSERT_NE(m, nullptr);
  const std::string text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("vllm:time_to_first_token_seconds_bucket{"));
  EXPECT_THAT(text, HasSubstr("vllm:num_requests_waiting{model_name=\"gemma-4-test\"} 0"));
  EXPECT_THAT(text, HasSubstr("# TYPE vllm:kv_cache_usage_perc gauge"));
  EXPECT_THAT(text, Not(HasSubstr("g4serve")));
}

TEST(CoordinatorMetricsTest, RejectsBadOptions) {
  prometheus::Registry registry;
  CoordinatorMetricsOptions o;
  o.model_name = "m";
  o.prefix = "my-app_";
  EXPECT_EQ(CoordinatorMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.prefix = "__x";
  EXPECT_EQ(CoordinatorMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.prefix = "g4serve_";
  o.model_name = "";
  EXPECT_EQ(CoordinatorMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A family of the same name but another type: an error, not an exception.
  prometheus::BuildCounter().Name("clash_num_requests_running").Register(registry);
  o.model_name = "m";
  o.prefix = "clash_";
  EXPECT_EQ(CoordinatorMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  // Two models on one registry share the families.
  o.prefix = "g4serve_";
  o.model_name = "a";
  ASSERT_TRUE(CoordinatorMetrics::Create(registry, o).ok());
  o.model_name = "b";
  ASSERT_TRUE(CoordinatorMetrics::Create(registry, o).ok());
  EXPECT_THAT(SerializeMetricsText(registry),
              HasSubstr("g4serve_num_requests_running{model_name=\"b\"} 0"));
}

TEST(WorkerMetricsTest, NamesLabelsAndRemoval) {
  prometheus::Registry registry;
  WorkerMetricsOptions o;
  o.model_name = "gemma-4-test";
  o.rank = 1;
  o.replica = 3;
  absl::StatusOr<std::unique_ptr<WorkerMetrics>> m = WorkerMetrics::Create(registry, o);
  ASSERT_TRUE(m.ok()) << m.status();
  (*m)->ObserveStep(0.004);
  (*m)->ObserveStep(0.02);
  (*m)->ObserveCollective("data", CollectiveOp::kAllReduce, 0.0003);
  (*m)->ObserveCollective("control", CollectiveOp::kBroadcast, 0.001);
  (*m)->SetWeightsLoaded(123456, 1.5);

  const std::string text = SerializeMetricsText(registry);
  const std::string l = "model_name=\"gemma-4-test\",rank=\"1\",replica=\"3\"";
  const std::string rl = "rank=\"1\",replica=\"3\"";
  EXPECT_THAT(text, HasSubstr("# TYPE g4serve_worker_step_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_step_duration_seconds_count{" + l + "} 2"));
  EXPECT_THAT(text, HasSubstr("# TYPE g4serve_worker_collective_duration_seconds histogram"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_collective_duration_seconds_count{group=\"data\","
                              "model_name=\"gemma-4-test\",op=\"all_reduce\"," + rl + "} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_collective_duration_seconds_count{group=\"data\","
                              "model_name=\"gemma-4-test\",op=\"barrier\"," + rl + "} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_collective_duration_seconds_count{group=\"control\","
                              "model_name=\"gemma-4-test\",op=\"broadcast\"," + rl + "} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_weights_loaded_bytes{" + l + "} 123456"));
  EXPECT_THAT(text, HasSubstr("g4serve_worker_weights_load_seconds{" + l + "} 1.5"));
  EXPECT_THAT(text, HasSubstr("# TYPE g4serve_worker_resident_memory_bytes gauge"));

  const std::vector<prometheus::MetricFamily> families = registry.Collect();
  const prometheus::MetricFamily* step = FindFamily(families, "g4serve_worker_step_duration_seconds");
  ASSERT_NE(step, nullptr);
  ASSERT_EQ(step->metric.size(), 1u);
  EXPECT_EQ(LabelValue(step->metric[0], "rank"), "1");
  std::vector<double> b = UpperBounds(step->metric[0]);
  b.pop_back();
  EXPECT_EQ(b, WorkerStepBuckets());
  const prometheus::MetricFamily* mem = FindFamily(families, "g4serve_worker_resident_memory_bytes");
  ASSERT_NE(mem, nullptr);
  ASSERT_EQ(mem->metric.size(), 1u);
  EXPECT_GT(mem->metric[0].gauge.value, 1 << 20);  // this test process uses more than 1 MiB
  EXPECT_GT(ProcessResidentBytes(), 1 << 20);

  m->reset();  // its series go away with it
  const std::string after = SerializeMetricsText(registry);
  EXPECT_THAT(after, Not(HasSubstr("rank=\"1\"")));
}

TEST(WorkerMetricsTest, RejectsBadOptions) {
  prometheus::Registry registry;
  WorkerMetricsOptions o;
  EXPECT_EQ(WorkerMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.model_name = "m";
  o.prefix = "9x";
  EXPECT_EQ(WorkerMetrics::Create(registry, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerTest, SplitHostPort) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(SplitHostPort("127.0.0.1:9400", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9400);
  ASSERT_TRUE(SplitHostPort("[::1]:0", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(SplitHostPort("nohost", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort(":80", &host, &port).ok());
  EXPECT_FALSE(SplitHostPort("h:70000", &host, &port).ok());
}

TEST(MetricsServerTest, RejectsBadArguments) {
  EXPECT_EQ(MetricsServer::Start("", 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Start("127.0.0.1", 65536).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsServerTest, PortInUseIsUnavailable) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> a = MetricsServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<std::unique_ptr<MetricsServer>> b =
      MetricsServer::Start("127.0.0.1", (*a)->port());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable) << b.status();
}

// Starts a server on port 0 with every coordinator and worker metric populated, scrapes it over
// HTTP, and lints the scrape with promtool.
TEST(MetricsServerTest, BasicAuthProtectsScrapes) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status();
  (*server)->RequireBasicAuth([](const std::string&, const std::string& password) {
    return password == "sk-scrape";
  });
  absl::StatusOr<testing::HttpResponse> r = testing::HttpGet((*server)->port(), "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  r = testing::HttpGet((*server)->port(), "/metrics",
                       absl::StrCat("Authorization: Basic ",
                                    absl::Base64Escape("prometheus:sk-wrong"), "\r\n"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 401);
  r = testing::HttpGet((*server)->port(), "/metrics",
                       absl::StrCat("Authorization: Basic ",
                                    absl::Base64Escape("prometheus:sk-scrape"), "\r\n"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
}

TEST(MetricsServerTest, ScrapeOverHttpPassesPromtool) {
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start("127.0.0.1", 0);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  EXPECT_EQ((*server)->address(), absl::StrCat("127.0.0.1:", (*server)->port()));
  prometheus::Registry& registry = *(*server)->registry();
  auto c = MakeCoordinator(registry);
  ASSERT_NE(c, nullptr);
  c->ObserveTtft(0.05);
  c->AddPromptTokens(10);
  c->RequestFinished(FinishedReason::kStop);
  c->RequestFailed("internal");
  c->SetKvPoolUsage("full", 0.1);
  c->SetCacheConfigInfo({{"block_size", "16"}});
  WorkerMetricsOptions wo;
  wo.model_name = "gemma-4-test";
  absl::StatusOr<std::unique_ptr<WorkerMetrics>> w = WorkerMetrics::Create(registry, wo);
  ASSERT_TRUE(w.ok()) << w.status();
  (*w)->ObserveStep(0.01);
  (*w)->ObserveCollective("data", CollectiveOp::kAllGather, 0.001);
  (*w)->SetWeightsLoaded(1000, 0.5);
  int scrapes = 0;
  (*server)->AddScrapeCallback([&] {
    ++scrapes;
    (*w)->SetResidentMemory(424242);
  });

  absl::StatusOr<testing::HttpResponse> r = testing::HttpGet((*server)->port(), "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(scrapes, 1);
  EXPECT_THAT(r->body, HasSubstr("g4serve_prompt_tokens_total{model_name=\"gemma-4-test\"} 10"));
  // The callback ran before the registry was collected.
  EXPECT_THAT(r->body, HasSubstr("g4serve_worker_resident_memory_bytes{model_name=\"gemma-4-test\","
                                 "rank=\"0\",replica=\"0\"} 424242"));

  const std::string promtool = testing::FindExecutable({"/usr/bin/promtool", "/usr/local/bin/promtool"});
  if (promtool.empty()) GTEST_SKIP() << "promtool not installed (tools/setup.sh installs prometheus)";
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() / absl::StrCat("g4_metrics_scrape_", getpid(), ".txt");
  {
    std::ofstream out(file);
    out << r->body;
  }
  const std::filesystem::path log = file.string() + ".log";
  const int rc = std::system(
      absl::StrCat(promtool, " check metrics < ", file.string(), " > ", log.string(), " 2>&1")
          .c_str());
  std::ifstream in(log);
  const std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << "promtool check metrics:\n" << output << "\nscrape:\n" << r->body;
  std::filesystem::remove(file);
  std::filesystem::remove(log);
}

}  // namespace
}  // namespace g4
