// Self-healing and no lost requests, with real g4-coordinator and g4-worker processes on
// loopback (docs/coordinator.md "Recovery", "Migration", "Drain"; docs/worker.md "Drain"):
//  * a stalled worker (SIGSTOP, then SIGCONT) returns to service by itself — the regression
//    test for replicas that stayed UNAVAILABLE for good;
//  * a collective that timed out makes the replica be formed again on every rank;
//  * a stream on a replica that stalls, dies (SIGKILL) or drains past its deadline continues on
//    the other replica with exactly the uninterrupted run's tokens (greedy and seeded, the
//    latter with --batch-invariant kernels);
//  * a killed worker restarted on its address takes its rank back and the replica re-forms;
//  * SIGTERM drains a worker (its stream finishes, then it exits 0) and the coordinator
//    (readiness fails at once, new requests are refused, the stream finishes, exit 0);
//  * a client of a coordinator that dies gets UNAVAILABLE promptly.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/integration/cluster.h"
#include "tests/worker/model/golden_reference.h"

namespace g4 {
namespace {

using testing::Cluster;
using testing::ClusterOf;
using testing::ClusterOptions;
namespace pb = ::g4serve::v1;

constexpr int kLongStream = 440;  // tokens: most of the tiny model's 512-token context

pb::GenerateRequest LongRequest(bool seeded, int max_tokens = kLongStream) {
  const auto ref = testing::LoadGoldenReference("dense");
  pb::GenerateRequest r;
  for (int32_t id : ref.greedy_prompt) r.mutable_token_ids()->add_ids(id);
  if (seeded) {
    r.mutable_sampling()->set_temperature(0.9f);
    r.mutable_sampling()->set_top_k(50);
    r.mutable_sampling()->set_seed(4242);
    r.mutable_sampling()->set_repetition_penalty(1.2f);
  } else {
    r.mutable_sampling()->set_temperature(0);
  }
  r.mutable_stopping()->set_max_tokens(max_tokens);
  r.mutable_stopping()->set_ignore_eos(true);
  return r;
}

// One streaming request on its own thread, its tokens visible as they arrive.
class StreamClient {
 public:
  StreamClient(pb::Inference::Stub* stub, pb::GenerateRequest request,
               absl::Duration timeout = absl::Seconds(90)) {
    thread_ = std::thread([this, stub, request = std::move(request), timeout] {
      ctx_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
      auto reader = stub->Generate(&ctx_, request);
      pb::GenerateResponse r;
      while (reader->Read(&r)) {
        absl::MutexLock lock(&mu_);
        for (const auto& t : r.tokens()) result_.tokens.push_back(t.token_id());
        result_.text += r.text();
        ids_.push_back(r.request_id());
        if (r.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) {
          ++finals_;
          result_.finish = r.finish_reason();
          result_.usage = r.usage();
        }
      }
      const grpc::Status status = reader->Finish();
      absl::MutexLock lock(&mu_);
      result_.status = status;
      done_ = true;
    });
  }
  ~StreamClient() { Join(); }

  // Waits until at least `n` tokens arrived (or the stream ended); false on timeout.
  bool WaitForTokens(int n, absl::Duration timeout = absl::Seconds(60)) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return done_ || static_cast<int>(result_.tokens.size()) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout) &&
           static_cast<int>(result_.tokens.size()) >= n;
  }
  int tokens() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(result_.tokens.size());
  }

  Cluster::Result Join() {
    if (thread_.joinable()) thread_.join();
    absl::MutexLock lock(&mu_);
    return result_;
  }
  int finals() {
    absl::MutexLock lock(&mu_);
    return finals_;
  }
  // The distinct request ids the responses carried.
  std::vector<std::string> ids() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> out;
    for (const std::string& id : ids_) {
      if (out.empty() || out.back() != id) out.push_back(id);
    }
    return out;
  }

 private:
  grpc::ClientContext ctx_;
  absl::Mutex mu_;
  Cluster::Result result_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> ids_ ABSL_GUARDED_BY(mu_);
  int finals_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Waits until ListModels reports `ready` READY replicas; false after `timeout`.
bool WaitForReady(Cluster& cluster, int ready, absl::Duration timeout = absl::Seconds(60)) {
  return cluster.WaitForReplicas(ready, timeout) && cluster.ReadyReplicas() == ready;
}

bool WaitForReadyAtMost(Cluster& cluster, int ready, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const int now = cluster.ReadyReplicas();
    if (now >= 0 && now <= ready) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Waits until replica `replica` is READY after at least `recoveries` recoveries.
bool WaitForRecovery(Cluster& cluster, int replica, int recoveries,
                     absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const pb::ModelInfo model = cluster.Model();
    if (model.replicas_size() > replica && model.replicas(replica).state() == "READY" &&
        model.replicas(replica).recoveries() >= recoveries) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

int CountOf(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// The regression test: a 4 s SIGSTOP of a worker used to leave its replica UNAVAILABLE for
// good. Both ranks answer READY on the same load after SIGCONT: the replica resumes (no reload)
// within a few health periods, for a stalled follower and a stalled leader.
TEST(ResilienceTest, StalledWorkerReturnsToServiceAfterSigcont) {
  const auto ref = testing::LoadGoldenReference("dense");
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 2, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  const Cluster::Result before = cluster.Generate(LongRequest(false, 8));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message() << cluster.Logs();
  for (int stalled : {1, 0}) {  // the follower, then the leader
    const absl::Time stop = absl::Now();
    cluster.worker(stalled).Kill(SIGSTOP);
    ASSERT_TRUE(WaitForReadyAtMost(cluster, 0, absl::Seconds(10))) << cluster.Logs();
    absl::SleepFor(absl::Seconds(4) - (absl::Now() - stop));
    const absl::Time cont = absl::Now();
    cluster.worker(stalled).Kill(SIGCONT);
    ASSERT_TRUE(WaitForReady(cluster, 1, absl::Seconds(20))) << cluster.Logs();
    std::printf("[ measure ] worker %d stalled 4 s: back in service %.0f ms after SIGCONT "
                "(health interval 200 ms, timeout 2 s)\n",
                stalled, absl::ToDoubleMilliseconds(absl::Now() - cont));
    const Cluster::Result after = cluster.Generate(LongRequest(false, 8));
    ASSERT_TRUE(after.status.ok()) << after.status.error_message() << cluster.Logs();
    EXPECT_EQ(after.tokens, before.tokens);
  }
  const pb::ModelInfo model = cluster.Model();
  ASSERT_EQ(model.replicas_size(), 1);
  EXPECT_EQ(model.replicas(0).state(), "READY");
  EXPECT_EQ(model.replicas(0).recoveries(), 2);
  // Resumed, not reloaded: each worker loaded once.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(CountOf(cluster.worker(i).Log(), "g4-worker: loading "), 1) << cluster.Logs();
  }
  EXPECT_NE(cluster.coordinator().Log().find("resuming"), std::string::npos);
}

// A collective that times out (a follower stalled longer than --collective-timeout while the
// leader was stepping) breaks the replica's communicators: after SIGCONT the coordinator tears
// the replica down on both ranks and forms it again.
TEST(ResilienceTest, TimedOutCollectiveReformsTheReplica) {
  ClusterOptions options =
      ClusterOf(testing::GoldenDir("dense"), 2, 2, 1, {"--collective-timeout", "1s"});
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  const Cluster::Result before = cluster.Generate(LongRequest(false, 8));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message();
  const int follower = 1 - cluster.LeaderOf(0);
  ASSERT_TRUE(follower == 0 || follower == 1) << cluster.Logs();
  StreamClient stream(&cluster.stub(), LongRequest(false));
  ASSERT_TRUE(stream.WaitForTokens(5)) << cluster.Logs();
  cluster.worker(follower).Kill(SIGSTOP);  // the leader's next collective waits, then times out
  const Cluster::Result failed = stream.Join();
  // No other replica: the request fails (promptly, with the replica's error), it does not hang.
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << failed.status.error_message();
  absl::SleepFor(absl::Seconds(2));
  cluster.worker(follower).Kill(SIGCONT);
  ASSERT_TRUE(WaitForReady(cluster, 1, absl::Seconds(40))) << cluster.Logs();
  const pb::ModelInfo model = cluster.Model();
  ASSERT_EQ(model.replicas_size(), 1);
  EXPECT_GE(model.replicas(0).recoveries(), 1);
  for (int i = 0; i < 2; ++i) {
    EXPECT_GE(CountOf(cluster.worker(i).Log(), "unloading"), 1) << cluster.Logs();
    // Formed again: a second load at least (a third when the first re-forming met the
    // follower still catching up is fine too).
    EXPECT_GE(CountOf(cluster.worker(i).Log(), "g4-worker: loading "), 2) << cluster.Logs();
  }
  const Cluster::Result after = cluster.Generate(LongRequest(false, 8));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message() << cluster.Logs();
  EXPECT_EQ(after.tokens, before.tokens);
}

// Checks a stream that moved replicas against the uninterrupted run: same tokens, one final
// response, usage counted once, one request id.
void ExpectSameAsUninterrupted(StreamClient& stream, const Cluster::Result& reference,
                               Cluster& cluster) {
  const Cluster::Result r = stream.Join();
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
  size_t diverge = 0;
  while (diverge < r.tokens.size() && diverge < reference.tokens.size() &&
         r.tokens[diverge] == reference.tokens[diverge]) {
    ++diverge;
  }
  EXPECT_EQ(r.tokens, reference.tokens) << "first difference at token " << diverge << " of "
                                        << reference.tokens.size() << "\n"
                                        << cluster.coordinator().Log();
  EXPECT_EQ(r.finish, reference.finish);
  EXPECT_EQ(r.usage.completion_tokens(), reference.usage.completion_tokens());
  EXPECT_EQ(r.usage.prompt_tokens(), reference.usage.prompt_tokens());
  EXPECT_EQ(stream.finals(), 1);
  EXPECT_EQ(stream.ids().size(), 1u);
}

// The serving replica's leader stalls (SIGSTOP) mid-stream: the health check takes the replica
// out of service and the stream continues on the other replica with the uninterrupted run's
// tokens, greedy and seeded; after SIGCONT the stalled replica comes back.
TEST(ResilienceTest, StreamMovesOffAStalledReplica) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 1, 1, {"--batch-invariant"}));
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  for (bool seeded : {false, true}) {
    const Cluster::Result reference = cluster.Generate(LongRequest(seeded));
    ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
    ASSERT_EQ(static_cast<int>(reference.tokens.size()), kLongStream);
    const int leader = cluster.LeaderOf(0);  // idle replicas: the lowest index serves
    ASSERT_GE(leader, 0) << cluster.Logs();
    const std::string migrated = "continuing on another replica";
    const int migrations_before = CountOf(cluster.coordinator().Log(), migrated);
    StreamClient stream(&cluster.stub(), LongRequest(seeded));
    ASSERT_TRUE(stream.WaitForTokens(10)) << cluster.Logs();
    cluster.worker(leader).Kill(SIGSTOP);
    ExpectSameAsUninterrupted(stream, reference, cluster);
    EXPECT_EQ(CountOf(cluster.coordinator().Log(), migrated), migrations_before + 1)
        << "the stream finished before the stall: nothing was tested\n" << cluster.Logs();
    cluster.worker(leader).Kill(SIGCONT);
    ASSERT_TRUE(WaitForReady(cluster, 2, absl::Seconds(20))) << cluster.Logs();
  }
}

// A worker SIGKILLed mid-stream: the stream continues on the other replica (no client sees a
// broken stream); the worker restarted on its address takes its rank back and the replica is
// formed again.
TEST(ResilienceTest, KilledWorkerMidStreamMigratesAndItsReplicaReforms) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 1, 1, {"--batch-invariant"}));
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  const Cluster::Result reference = cluster.Generate(LongRequest(true));
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  const int leader = cluster.LeaderOf(0);
  ASSERT_GE(leader, 0) << cluster.Logs();
  StreamClient stream(&cluster.stub(), LongRequest(true));
  ASSERT_TRUE(stream.WaitForTokens(10)) << cluster.Logs();
  ::kill(cluster.worker(leader).pid(), SIGKILL);
  ExpectSameAsUninterrupted(stream, reference, cluster);
  EXPECT_NE(cluster.coordinator().Log().find("continuing on another replica"), std::string::npos);
  cluster.RestartWorker(leader);
  ASSERT_TRUE(WaitForRecovery(cluster, 0, 1)) << cluster.Logs();
  ASSERT_TRUE(WaitForReady(cluster, 2, absl::Seconds(40))) << cluster.Logs();
  const pb::ModelInfo model = cluster.Model();
  ASSERT_EQ(model.replicas_size(), 2);  // the same replica came back: none was added
  EXPECT_EQ(model.replicas(0).recoveries(), 1);
  const Cluster::Result after = cluster.Generate(LongRequest(true));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message();
  EXPECT_EQ(after.tokens, reference.tokens);
}

// SIGTERM on a worker: its replica is DRAINING (no new requests), its stream finishes, then it
// is released and the worker exits 0; restarted, it serves again.
TEST(ResilienceTest, DrainingWorkerFinishesItsStreamThenExits) {
  ClusterOptions options = ClusterOf(testing::GoldenDir("dense"), 2, 1, 1);
  options.extra_worker_flags = {"--drain-timeout", "60s"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  const Cluster::Result reference = cluster.Generate(LongRequest(false));
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  const int leader = cluster.LeaderOf(0);
  ASSERT_GE(leader, 0);
  StreamClient stream(&cluster.stub(), LongRequest(false));
  ASSERT_TRUE(stream.WaitForTokens(5)) << cluster.Logs();
  ::kill(cluster.worker(leader).pid(), SIGTERM);
  ExpectSameAsUninterrupted(stream, reference, cluster);
  // Not migrated: the draining replica finished it.
  EXPECT_EQ(cluster.coordinator().Log().find("continuing on another replica"), std::string::npos)
      << cluster.Logs();
  EXPECT_EQ(cluster.worker(leader).Wait(absl::Seconds(20)), 0) << cluster.Logs();
  EXPECT_NE(cluster.worker(leader).Log().find("drained"), std::string::npos);
  EXPECT_NE(cluster.coordinator().Log().find("DRAINING"), std::string::npos);
  // Meanwhile the other replica serves.
  const Cluster::Result other = cluster.Generate(LongRequest(false, 8));
  ASSERT_TRUE(other.status.ok()) << other.status.error_message();
  cluster.RestartWorker(leader);
  ASSERT_TRUE(WaitForRecovery(cluster, 0, 1)) << cluster.Logs();
  ASSERT_TRUE(WaitForReady(cluster, 2, absl::Seconds(40))) << cluster.Logs();
}

// A worker whose drain deadline passes before its stream ends: the stream left is migrated.
TEST(ResilienceTest, DrainDeadlineMigratesTheStream) {
  ClusterOptions options = ClusterOf(testing::GoldenDir("dense"), 2, 1, 1, {"--batch-invariant"});
  options.extra_worker_flags = {"--drain-timeout", "1ms"};
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  const Cluster::Result reference = cluster.Generate(LongRequest(true));
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  const int leader = cluster.LeaderOf(0);
  ASSERT_GE(leader, 0);
  StreamClient stream(&cluster.stub(), LongRequest(true));
  ASSERT_TRUE(stream.WaitForTokens(5)) << cluster.Logs();
  ::kill(cluster.worker(leader).pid(), SIGTERM);
  ExpectSameAsUninterrupted(stream, reference, cluster);
  EXPECT_NE(cluster.coordinator().Log().find("continuing on another replica"), std::string::npos)
      << "the stream finished before the drain deadline: nothing was tested\n" << cluster.Logs();
  EXPECT_EQ(cluster.worker(leader).Wait(absl::Seconds(20)), 0);
}

// SIGTERM on the coordinator: readiness fails at once (HTTP /health 503 "draining"), a new
// request gets UNAVAILABLE, the stream in flight finishes, then the coordinator exits 0.
TEST(ResilienceTest, CoordinatorDrainsOnSigterm) {
  ClusterOptions options =
      ClusterOf(testing::GoldenDir("dense"), 1, 1, 1, {"--drain-timeout", "60s"});
  options.http = true;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  const Cluster::Result reference = cluster.Generate(LongRequest(false));
  ASSERT_TRUE(reference.status.ok()) << reference.status.error_message();
  httplib::Client http("127.0.0.1", cluster.http_port());
  http.set_read_timeout(5, 0);
  auto health = http.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  StreamClient stream(&cluster.stub(), LongRequest(false));
  ASSERT_TRUE(stream.WaitForTokens(5)) << cluster.Logs();
  ::kill(cluster.coordinator().pid(), SIGTERM);
  // Readiness fails at once.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int status = 0;
  while (absl::Now() < deadline) {
    auto h = http.Get("/health");
    if (h && h->status == 503) {
      status = 503;
      EXPECT_NE(h->body.find("draining"), std::string::npos) << h->body;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(status, 503);
  const Cluster::Result refused = cluster.Generate(LongRequest(false, 4), absl::Seconds(5));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(refused.status.error_message().find("draining"), std::string::npos)
      << refused.status.error_message();
  ExpectSameAsUninterrupted(stream, reference, cluster);
  EXPECT_EQ(cluster.coordinator().Wait(absl::Seconds(20)), 0) << cluster.Logs();
  EXPECT_NE(cluster.coordinator().Log().find("drained"), std::string::npos);
}

// A coordinator that dies (SIGKILL) mid-stream: its client gets UNAVAILABLE at once, no hang.
TEST(ResilienceTest, KilledCoordinatorGivesItsClientsUnavailablePromptly) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 1, 1, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  StreamClient stream(&cluster.stub(), LongRequest(false));
  ASSERT_TRUE(stream.WaitForTokens(5)) << cluster.Logs();
  const absl::Time killed = absl::Now();
  ::kill(cluster.coordinator().pid(), SIGKILL);
  const Cluster::Result r = stream.Join();
  const absl::Duration took = absl::Now() - killed;
  if (r.status.ok()) GTEST_SKIP() << "the stream finished before the kill";
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  EXPECT_LT(took, absl::Seconds(2));
  std::printf("[ measure ] client saw UNAVAILABLE %.0f ms after the coordinator died\n",
              absl::ToDoubleMilliseconds(took));
}

}  // namespace
}  // namespace g4
