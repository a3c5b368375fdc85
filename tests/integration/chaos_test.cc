// Chaos on a real network: the coordinator, every worker and the client are separate hosts
// (network namespaces on a bridge, tests/integration/network_lab.h), and the faults are
// network faults — delay and loss on one worker's link, a worker's link cut for 3 s, the direct
// link between the two ranks of a replica cut — plus a worker SIGKILLed mid-stream and
// restarted. Clients stream over the OpenAI HTTP API (SSE) from the client host; every stream
// must end as the uninterrupted run does (same text, one id, usage counted once) while another
// replica exists. Skips, saying why, when network namespaces cannot be made (not root, no
// iproute2). docs/resilience.md.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/network_lab.h"
#include "tests/integration/process.h"
#include "tests/testing/temp_dir.h"
#include "tests/worker/model/golden_reference.h"
#include "tools/load_generator/sse_parser.h"

namespace g4 {
namespace {

using Json = nlohmann::json;
using testing::NetworkLab;
using testing::Process;

constexpr int kGrpcPort = 50051;
constexpr int kHttpPort = 8000;
constexpr int kWorkerPort = 50052;

// One streamed completion as the client saw it.
struct Completion {
  int status = 0;               // HTTP status; 0 when the connection failed
  std::string error;
  std::string text;
  std::vector<std::string> ids;  // distinct chunk ids, in order
  std::string finish_reason;
  int completion_tokens = -1;
  int chunks = 0;
  absl::Time sent;
  std::vector<absl::Time> arrivals;  // of chunks with text
  bool done = false;                 // data: [DONE] seen
};

Json CompletionBody(int max_tokens, bool seeded) {
  const auto ref = testing::LoadGoldenReference("dense");
  Json body = {{"model", "dense"},
               {"prompt", ref.greedy_prompt},
               {"max_tokens", max_tokens},
               {"ignore_eos", true},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (seeded) {
    body["temperature"] = 0.9;
    body["top_k"] = 50;
    body["seed"] = 4242;
  } else {
    body["temperature"] = 0;
  }
  return body;
}

// Must run on a thread inside the client's namespace (NetworkLab::RunIn).
Completion Stream(const std::string& host, const Json& body,
                  std::atomic<int>* chunks_seen = nullptr) {
  Completion c;
  httplib::Client client(host, kHttpPort);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(60, 0);
  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.set_header("Content-Type", "application/json");
  request.body = body.dump();
  load::SseParser parser;
  std::string raw;
  request.response_handler = [&](const httplib::Response& r) {
    c.status = r.status;
    return true;
  };
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    const absl::Time now = absl::Now();
    if (c.status != 200) {
      raw.append(data, size);
      return true;
    }
    for (const std::string& payload : parser.Feed(absl::string_view(data, size))) {
      if (payload == "[DONE]") {
        c.done = true;
        continue;
      }
      const Json chunk = Json::parse(payload, nullptr, /*allow_exceptions=*/false);
      if (!chunk.is_object()) {
        c.error = "bad SSE data: " + payload;
        return false;
      }
      if (chunk.contains("error")) {
        c.error = chunk["error"].dump();
        continue;
      }
      ++c.chunks;
      if (chunks_seen != nullptr) chunks_seen->fetch_add(1);
      const std::string id = chunk.value("id", "");
      if (c.ids.empty() || c.ids.back() != id) c.ids.push_back(id);
      if (chunk.contains("choices") && chunk["choices"].is_array() &&
          !chunk["choices"].empty()) {
        const Json& choice = chunk["choices"][0];
        if (choice.contains("text") && choice["text"].is_string()) {
          const std::string t = choice["text"].get<std::string>();
          if (!t.empty()) c.arrivals.push_back(now);
          c.text += t;
        }
        if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
          c.finish_reason = choice["finish_reason"].get<std::string>();
        }
      }
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        c.completion_tokens = chunk["usage"].value("completion_tokens", -1);
      }
    }
    return true;
  };
  c.sent = absl::Now();
  httplib::Result result = client.send(request);
  if (!result) c.error = absl::StrCat("HTTP: ", httplib::to_string(result.error()));
  if (c.status != 200 && c.error.empty()) c.error = absl::StrCat("HTTP ", c.status, ": ", raw);
  return c;
}

// Inter-chunk gaps of a set of completions, in ms.
std::vector<double> GapsMs(const std::vector<Completion>& all) {
  std::vector<double> gaps;
  for (const Completion& c : all) {
    for (size_t i = 1; i < c.arrivals.size(); ++i) {
      gaps.push_back(absl::ToDoubleMilliseconds(c.arrivals[i] - c.arrivals[i - 1]));
    }
  }
  std::sort(gaps.begin(), gaps.end());
  return gaps;
}

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * (sorted.size() - 1)))];
}

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<NetworkLab>> lab =
        NetworkLab::Create({"coord", "client", "w0", "w1", "w2", "w3"});
    if (!lab.ok()) GTEST_SKIP() << "chaos tests skipped: " << lab.status().message();
    lab_ = *std::move(lab);
    temp_dir_ = std::make_unique<testing::ScopedTempDir>(
        absl::StrCat("g4chaos.", ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    dir_ = temp_dir_->path();
  }

  void TearDown() override {
    // Processes first (they hold the namespaces), then the lab.
    for (auto& w : workers_) {
      if (w != nullptr) w->Kill(SIGKILL);
    }
    coordinator_.Kill(SIGKILL);
    lab_.reset();
  }

  // The coordinator on the "coord" host: fast health checks, the given parallelism.
  void StartCoordinator(int tp, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {
        G4_COORDINATOR_BIN, "--model", testing::GoldenDir("dense"), "--host",
        lab_->Address("coord"), "--port", std::to_string(kGrpcPort), "--http-port",
        std::to_string(kHttpPort), "--tensor-parallel-size", std::to_string(tp),
        "--health-interval", "200ms", "--health-timeout", "1s", "--batch-invariant"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_TRUE(coordinator_.Start(lab_->Exec("coord", argv), dir_ + "/coordinator.log"));
  }

  // Worker i on host "w<i>", on its fixed address and port.
  void StartWorker(int i, std::vector<std::string> extra = {}) {
    const std::string host = absl::StrCat("w", i);
    std::vector<std::string> argv = {
        G4_WORKER_BIN, "--coordinator", absl::StrCat(lab_->Address("coord"), ":", kGrpcPort),
        "--host", lab_->Address(host), "--port", std::to_string(kWorkerPort), "--threads", "1",
        "--heartbeat-interval", "1s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (workers_.size() <= static_cast<size_t>(i)) workers_.resize(i + 1);
    workers_[i] = std::make_unique<Process>();
    ASSERT_TRUE(workers_[i]->Start(lab_->Exec(host, argv),
                                   absl::StrCat(dir_, "/worker", i, ".log")));
  }

  // GET /health from the client host; null JSON when it does not answer.
  Json Health() {
    Json out;
    (void)lab_->RunIn("client", [&] {
      httplib::Client c(lab_->Address("coord"), kHttpPort);
      c.set_connection_timeout(2, 0);
      c.set_read_timeout(2, 0);
      auto r = c.Get("/health");
      if (r) out = Json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    });
    return out;
  }

  int Ready() {
    const Json h = Health();
    return h.is_object() ? h.value("replicas_ready", -1) : -1;
  }

  // The state of replica `index` from /health ("" when unknown).
  std::string StateOf(int index) {
    const Json h = Health();
    if (!h.is_object() || !h.contains("replicas")) return "";
    for (const Json& r : h["replicas"]) {
      if (r.value("index", -1) == index) return r.value("state", "");
    }
    return "";
  }

  bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (condition()) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  // The worker host that leads replica `replica` (the coordinator log's last LOADING line).
  std::string LeaderHost(int replica) {
    const std::string log = coordinator_.Log();
    const size_t at = log.rfind(absl::StrCat("replica ", replica, ": LOADING on "));
    if (at == std::string::npos) return "";
    const size_t leader = log.find("(leader ", at);
    if (leader == std::string::npos) return "";
    const std::string address = log.substr(leader + 8, log.find(':', leader) - leader - 8);
    for (int i = 0; i < 4; ++i) {
      const std::string host = absl::StrCat("w", i);
      if (lab_->Address(host) == address) return host;
    }
    return "";
  }

  // Streams `body` from the client host on a thread of its own.
  struct Running {
    std::thread thread;
    Completion result;
    std::atomic<int> chunks{0};
  };
  std::unique_ptr<Running> StartStream(const Json& body) {
    auto r = std::make_unique<Running>();
    Running* raw = r.get();
    raw->thread = std::thread([this, raw, body] {
      (void)lab_->RunIn("client", [&] {
        raw->result = Stream(lab_->Address("coord"), body, &raw->chunks);
      });
    });
    return r;
  }

  // Runs `n` streams of `body` at once from the client host and returns them.
  std::vector<Completion> StreamMany(int n, const Json& body) {
    std::vector<std::unique_ptr<Running>> running;
    for (int i = 0; i < n; ++i) running.push_back(StartStream(body));
    std::vector<Completion> out;
    for (auto& r : running) {
      r->thread.join();
      out.push_back(r->result);
    }
    return out;
  }

  Completion StreamOne(const Json& body) { return StreamMany(1, body)[0]; }

  std::string Logs() {
    std::string all = "--- coordinator ---\n" + coordinator_.Log();
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (workers_[i] != nullptr) all += absl::StrCat("--- worker ", i, " ---\n", workers_[i]->Log());
    }
    return all;
  }

  // The coordinator and two single-rank replicas (w0, w1), READY.
  void StartTwoReplicas() {
    StartCoordinator(1);
    StartWorker(0);
    StartWorker(1);
    ASSERT_TRUE(WaitFor([&] { return Ready() == 2; }, absl::Seconds(60))) << Logs();
  }

  // The uninterrupted run of `body`, and the host that will serve the next request (idle
  // replicas: the lowest index).
  void Reference(const Json& body, Completion* reference, std::string* next_host) {
    *reference = StreamOne(body);
    ASSERT_TRUE(reference->error.empty()) << reference->error << Logs();
    *next_host = LeaderHost(0);
    ASSERT_FALSE(next_host->empty()) << Logs();
  }

  // A stream that moved replicas (or not) against the uninterrupted run.
  void ExpectSame(const Completion& got, const Completion& reference) {
    EXPECT_TRUE(got.error.empty()) << got.error << "\n" << Logs();
    EXPECT_EQ(got.status, 200);
    EXPECT_TRUE(got.done);
    EXPECT_EQ(got.text, reference.text) << Logs();
    EXPECT_EQ(got.finish_reason, reference.finish_reason);
    EXPECT_EQ(got.completion_tokens, reference.completion_tokens);
    EXPECT_EQ(got.ids.size(), 1u);
  }

  std::unique_ptr<NetworkLab> lab_;
  std::unique_ptr<testing::ScopedTempDir> temp_dir_;  // logs; removed after the processes
  std::string dir_;
  Process coordinator_;
  std::vector<std::unique_ptr<Process>> workers_;
};

// 100 ms delay and 1% loss on one worker's link (each direction): serving continues on both
// replicas, nothing fails, and the streams through the impaired link slow down.
TEST_F(ChaosTest, DelayAndLossOnOneWorkerLinkSlowsButNothingFails) {
  ASSERT_NO_FATAL_FAILURE(StartTwoReplicas());
  const Json body = CompletionBody(64, false);
  const std::vector<Completion> before = StreamMany(8, body);
  for (const Completion& c : before) ExpectSame(c, before[0]);
  ASSERT_TRUE(lab_->Impair("w1", 100, 0.01, G4_LINK_EMULATOR_BIN).ok()) << Logs();
  const std::vector<Completion> during = StreamMany(8, body);
  for (const Completion& c : during) ExpectSame(c, before[0]);
  EXPECT_EQ(Ready(), 2) << "the impaired replica left service\n" << Logs();
  ASSERT_TRUE(lab_->Restore("w1").ok());
  // Time to first chunk: the impaired replica's requests pay the round trips.
  absl::Duration ttft_before, ttft_during;
  for (const Completion& c : before) ttft_before = std::max(ttft_before, c.arrivals[0] - c.sent);
  for (const Completion& c : during) ttft_during = std::max(ttft_during, c.arrivals[0] - c.sent);
  const std::vector<double> gaps_before = GapsMs(before), gaps_during = GapsMs(during);
  std::printf("[ measure ] %s: TTFT max %.0f -> %.0f ms; ITL p50 %.1f -> %.1f ms, p99 %.1f -> "
              "%.1f ms, max %.0f -> %.0f ms\n",
              lab_->HasNetem() ? "netem" : "g4-link-emulator",
              absl::ToDoubleMilliseconds(ttft_before), absl::ToDoubleMilliseconds(ttft_during),
              Quantile(gaps_before, 0.5), Quantile(gaps_during, 0.5), Quantile(gaps_before, 0.99),
              Quantile(gaps_during, 0.99), gaps_before.back(), gaps_during.back());
  // A lower bound the delay guarantees whatever the machine's load: the requests the impaired
  // replica serves cross its link (100 ms each way) at least once before their first token.
  // Comparisons with the unimpaired run are printed above, not asserted: on a loaded machine (or
  // under ASan) the unimpaired run's own tail can be longer.
  EXPECT_GE(ttft_during, absl::Milliseconds(200));
}

// The link to the worker serving a stream is cut for 3 s: its replica leaves service within the
// health timeout, the stream continues on the other replica, and the replica returns after the
// link does.
TEST_F(ChaosTest, CutLinkToAWorkerMigratesItsStreamAndTheReplicaReturns) {
  ASSERT_NO_FATAL_FAILURE(StartTwoReplicas());
  const Json body = CompletionBody(440, true);
  Completion reference;
  std::string host;
  ASSERT_NO_FATAL_FAILURE(Reference(body, &reference, &host));
  auto stream = StartStream(body);
  ASSERT_TRUE(WaitFor([&] { return stream->chunks.load() >= 10; }, absl::Seconds(30)));
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(lab_->SetLink(host, false).ok());
  ASSERT_TRUE(WaitFor([&] { return StateOf(0) == "UNAVAILABLE"; }, absl::Seconds(10))) << Logs();
  const absl::Duration detected = absl::Now() - cut;
  absl::SleepFor(absl::Seconds(3) - (absl::Now() - cut));
  ASSERT_TRUE(lab_->SetLink(host, true).ok());
  const absl::Time restored = absl::Now();
  stream->thread.join();
  ExpectSame(stream->result, reference);
  ASSERT_TRUE(WaitFor([&] { return Ready() == 2; }, absl::Seconds(60))) << Logs();
  std::printf("[ measure ] link cut: replica out of service after %.0f ms (health timeout 1 s), "
              "back %.0f ms after the link returned\n",
              absl::ToDoubleMilliseconds(detected),
              absl::ToDoubleMilliseconds(absl::Now() - restored));
  EXPECT_LT(detected, absl::Seconds(3));
  EXPECT_NE(coordinator_.Log().find("continuing on another replica"), std::string::npos);
}

// The direct link between the two ranks of a replica is cut: its collectives time out (no
// hang: the stream continues on the other replica), and once the link returns the replica is
// formed again on both ranks.
TEST_F(ChaosTest, CutLinkBetweenTwoRanksReformsTheReplica) {
  ASSERT_TRUE(lab_->AddPeerLink("w0", "w1").ok());
  ASSERT_TRUE(lab_->AddPeerLink("w2", "w3").ok());
  StartCoordinator(2, {"--collective-timeout", "2s"});
  // Collectives over the direct links; the coordinator's traffic over the bridge.
  StartWorker(0, {"--gloo-interface", NetworkLab::PeerInterface("w1"), "--replica-group", "a",
                  "--replica-rank", "0"});
  StartWorker(1, {"--gloo-interface", NetworkLab::PeerInterface("w0"), "--replica-group", "a",
                  "--replica-rank", "1"});
  StartWorker(2, {"--gloo-interface", NetworkLab::PeerInterface("w3"), "--replica-group", "b",
                  "--replica-rank", "0"});
  StartWorker(3, {"--gloo-interface", NetworkLab::PeerInterface("w2"), "--replica-group", "b",
                  "--replica-rank", "1"});
  ASSERT_TRUE(WaitFor([&] { return Ready() == 2; }, absl::Seconds(90))) << Logs();
  const Json body = CompletionBody(440, true);
  Completion reference;
  std::string leader;
  ASSERT_NO_FATAL_FAILURE(Reference(body, &reference, &leader));
  const std::string follower = leader == "w0" ? "w1" : leader == "w1" ? "w0"
                               : leader == "w2"   ? "w3"
                                                  : "w2";
  auto stream = StartStream(body);
  ASSERT_TRUE(WaitFor([&] { return stream->chunks.load() >= 10; }, absl::Seconds(30)));
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(lab_->SetPeerLink(leader, follower, false).ok());
  stream->thread.join();
  ExpectSame(stream->result, reference);
  const absl::Duration stream_done = absl::Now() - cut;
  ASSERT_TRUE(WaitFor([&] { return Ready() == 1; }, absl::Seconds(10))) << Logs();
  absl::SleepFor(absl::Seconds(2));  // re-forming fails (backs off) while the link is down
  ASSERT_TRUE(lab_->SetPeerLink(leader, follower, true).ok());
  const absl::Time restored = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return Ready() == 2; }, absl::Seconds(90))) << Logs();
  std::printf("[ measure ] rank link cut: stream finished on the other replica %.0f ms after the "
              "cut; replica re-formed %.0f ms after the link returned\n",
              absl::ToDoubleMilliseconds(stream_done),
              absl::ToDoubleMilliseconds(absl::Now() - restored));
  const Json h = Health();
  ASSERT_TRUE(h.is_object()) << Logs();
  int recoveries = 0;
  for (const Json& r : h["replicas"]) recoveries += r.value("recoveries", 0);
  EXPECT_GE(recoveries, 1);
  EXPECT_NE(coordinator_.Log().find("forming it again"), std::string::npos) << Logs();
  const Completion after = StreamOne(body);
  ExpectSame(after, reference);
}

// A worker SIGKILLed mid-stream and restarted on its address: no client sees a broken stream
// (another replica exists), and the restarted worker's replica is formed again.
TEST_F(ChaosTest, WorkerKilledMidStreamAndRestarted) {
  ASSERT_NO_FATAL_FAILURE(StartTwoReplicas());
  const Json body = CompletionBody(440, true);
  Completion reference;
  std::string host;
  ASSERT_NO_FATAL_FAILURE(Reference(body, &reference, &host));
  const int index = host == "w0" ? 0 : 1;
  auto stream = StartStream(body);
  ASSERT_TRUE(WaitFor([&] { return stream->chunks.load() >= 10; }, absl::Seconds(30)));
  ::kill(workers_[index]->pid(), SIGKILL);
  stream->thread.join();
  ExpectSame(stream->result, reference);
  workers_[index]->Wait(absl::Seconds(10));
  StartWorker(index);
  ASSERT_TRUE(WaitFor(
      [&] {
        const Json h = Health();
        return h.is_object() && h.value("replicas_ready", 0) == 2 &&
               h["replicas"][0].value("recoveries", 0) >= 1;
      },
      absl::Seconds(60)))
      << Logs();
  const Json h = Health();
  ASSERT_TRUE(h.is_object());
  ASSERT_EQ(h["replicas"].size(), 2u);  // the same replica came back; none was added
  EXPECT_GE(h["replicas"][0].value("recoveries", 0), 1) << h.dump();
  ExpectSame(StreamOne(body), reference);
}

}  // namespace
}  // namespace g4
