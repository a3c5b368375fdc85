// Worker metrics end to end: two WorkerServers with metrics on port 0 form a 2-rank replica of
// the tiny dense golden model through an in-memory fake coordinator; after a Generate each
// rank's /metrics (scraped over HTTP) shows step durations, timed collectives, the loaded
// weights and resident memory, and passes `promtool check metrics`.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/metrics/test_util.h"
#include "tests/worker/service/fake_fleet.h"
#include "tests/worker/model/golden_reference.h"
#include "worker/comm/key_value_store.h"
#include "proto/grpc_status.h"
#include "worker/service/worker_server.h"

namespace g4 {
namespace {

namespace wv1 = ::g4serve::worker::v1;
using ::testing::HasSubstr;
using ::testing::Not;

using ::g4::testing::FakeFleet;

// The value of the first sample line starting with `series` ("name{labels}"), or -1.
double SampleValue(const std::string& text, const std::string& series) {
  size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') {
      const size_t space = text.find(' ', pos + series.size());
      const size_t eol = text.find('\n', pos);
      if (space != std::string::npos && space < eol) {
        return std::strtod(text.substr(space + 1, eol - space - 1).c_str(), nullptr);
      }
    }
    pos += series.size();
  }
  return -1;
}

TEST(WorkerMetricsServiceTest, ReplicaReportsStepCollectiveWeightAndMemoryMetrics) {
  FakeFleet fleet;
  int fleet_port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &fleet_port);
  builder.RegisterService(&fleet);
  std::unique_ptr<grpc::Server> fleet_server = builder.BuildAndStart();
  ASSERT_NE(fleet_server, nullptr);

  constexpr int kWorkers = 2;
  std::vector<std::unique_ptr<WorkerServer>> workers;
  std::vector<std::unique_ptr<wv1::Worker::Stub>> stubs;
  for (int r = 0; r < kWorkers; ++r) {
    WorkerServerOptions o;
    o.coordinator = absl::StrCat("127.0.0.1:", fleet_port);
    o.register_timeout = absl::Seconds(10);
    o.metrics_port = 0;
    o.metrics_model_name = "gemma-4-tiny";
    o.log = false;
    absl::StatusOr<std::unique_ptr<WorkerServer>> s = WorkerServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    ASSERT_GT((*s)->metrics_port(), 0);
    ASSERT_TRUE((*s)->Register().ok());
    stubs.push_back(wv1::Worker::NewStub(
        grpc::CreateChannel((*s)->address(), grpc::InsecureChannelCredentials())));
    workers.push_back(std::move(*s));
  }
  // Before Load: an empty but valid exposition.
  absl::StatusOr<testing::HttpResponse> idle = testing::HttpGet(workers[0]->metrics_port(), "/metrics");
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ(idle->status, 200);
  EXPECT_THAT(idle->body, Not(HasSubstr("g4serve_worker_step_duration_seconds")));

  std::vector<std::thread> threads;
  std::vector<grpc::Status> statuses(kWorkers);
  for (int r = 0; r < kWorkers; ++r) {
    threads.emplace_back([&, r] {
      wv1::LoadRequest req;
      req.set_model_dir(g4::testing::GoldenDir("dense"));
      req.set_replica(7);
      req.set_rank(r);
      req.set_world_size(kWorkers);
      req.set_expert_parallel_size(1);
      req.set_store_prefix("metrics/load1");
      req.set_collective_timeout_ms(10000);
      grpc::ClientContext ctx;
      ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
      wv1::LoadResponse resp;
      statuses[r] = stubs[r]->Load(&ctx, req, &resp);
    });
  }
  for (auto& t : threads) t.join();
  for (const grpc::Status& s : statuses) ASSERT_TRUE(s.ok()) << s.error_message();

  const g4::testing::GoldenReference ref = g4::testing::LoadGoldenReference("dense");
  wv1::WorkerGenerateRequest req;
  req.set_request_id("m1");
  for (int32_t t : ref.greedy_prompt) req.add_prompt_token_ids(t);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(4);
  req.mutable_stopping()->set_ignore_eos(true);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    auto reader = stubs[0]->Generate(&ctx, req);
    wv1::WorkerGenerateResponse resp;
    int tokens = 0;
    while (reader->Read(&resp)) tokens += resp.tokens_size();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(tokens, 4);
  }

  const std::string promtool = testing::FindExecutable({"/usr/bin/promtool", "/usr/local/bin/promtool"});
  for (int r = 0; r < kWorkers; ++r) {
    SCOPED_TRACE(absl::StrCat("rank ", r));
    const std::string labels =
        absl::StrCat("model_name=\"gemma-4-tiny\",rank=\"", r, "\",replica=\"7\"");
    // The follower may still be finishing its last step: wait (bounded) for 4 steps.
    std::string body;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      absl::StatusOr<testing::HttpResponse> scrape =
          testing::HttpGet(workers[r]->metrics_port(), "/metrics");
      ASSERT_TRUE(scrape.ok()) << scrape.status();
      ASSERT_EQ(scrape->status, 200);
      body = scrape->body;
    } while (SampleValue(body, "g4serve_worker_step_duration_seconds_count{" + labels + "}") < 4 &&
             absl::Now() < deadline && (absl::SleepFor(absl::Milliseconds(50)), true));
    // Prefill + 3 decode steps (the 4th token is sampled from the 3rd decode's logits).
    EXPECT_GE(SampleValue(body, "g4serve_worker_step_duration_seconds_count{" + labels + "}"), 4)
        << body;
    EXPECT_GT(SampleValue(body, "g4serve_worker_collective_duration_seconds_count{group=\"data\","
                                "model_name=\"gemma-4-tiny\",op=\"all_reduce\",rank=\"" +
                                    absl::StrCat(r) + "\",replica=\"7\"}"),
              0);
    EXPECT_GT(SampleValue(body, "g4serve_worker_collective_duration_seconds_count{group=\"control\","
                                "model_name=\"gemma-4-tiny\",op=\"broadcast\",rank=\"" +
                                    absl::StrCat(r) + "\",replica=\"7\"}"),
              0);
    EXPECT_GT(SampleValue(body, "g4serve_worker_weights_loaded_bytes{" + labels + "}"), 0);
    EXPECT_GE(SampleValue(body, "g4serve_worker_weights_load_seconds{" + labels + "}"), 0);
    EXPECT_GT(SampleValue(body, "g4serve_worker_resident_memory_bytes{" + labels + "}"), 1 << 20);

    if (promtool.empty()) continue;
    const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                       absl::StrCat("g4_worker_scrape_", getpid(), "_", r, ".txt");
    {
      std::ofstream out(file);
      out << body;
    }
    const int rc = std::system(
        absl::StrCat(promtool, " check metrics < ", file.string(), " >&2").c_str());
    EXPECT_EQ(rc, 0) << "promtool check metrics failed on rank " << r;
    std::filesystem::remove(file);
  }

  for (auto& w : workers) w.reset();  // the leader first: it stops the follower
  fleet_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace g4
