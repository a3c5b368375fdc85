// g4serve as it runs: a g4-coordinator and g4-worker processes on loopback, requests through the
// public gRPC API. Tensor- and expert-parallel replicas must give transformers' greedy tokens
// (and their log-probabilities); a dead or hung worker takes down only its replica.
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "tests/integration/cluster.h"
#include "tests/worker/model/golden_reference.h"

namespace g4 {
namespace {

using testing::Cluster;
using testing::ClusterOf;
using testing::ClusterOptions;

g4serve::v1::GenerateRequest GreedyRequest(const std::vector<int32_t>& prompt, int max_tokens) {
  g4serve::v1::GenerateRequest r;
  for (int32_t id : prompt) r.mutable_token_ids()->add_ids(id);
  r.mutable_sampling()->set_temperature(0);
  r.mutable_sampling()->set_logprobs(0);
  r.mutable_stopping()->set_max_tokens(max_tokens);
  r.mutable_stopping()->set_ignore_eos(true);
  return r;
}

double LogSoftmaxAt(const std::vector<float>& logits, int32_t id) {
  const double mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float z : logits) sum += std::exp(z - mx);
  return logits[id] - mx - std::log(sum);
}

struct Plan {
  const char* variant;
  int workers;
  int tp;
  int ep;
};

class DistributedGoldenTest : public ::testing::TestWithParam<Plan> {};

TEST_P(DistributedGoldenTest, GreedyTokensAndLogprobsMatchTransformers) {
  const Plan& p = GetParam();
  const auto ref = testing::LoadGoldenReference(p.variant);
  Cluster cluster(ClusterOf(testing::GoldenDir(p.variant), p.workers, p.tp, p.ep));
  ASSERT_TRUE(cluster.Start(/*replicas=*/p.workers / p.tp));
  const int n = static_cast<int>(ref.greedy_tokens.size());
  Cluster::Result r = cluster.Generate(GreedyRequest(ref.greedy_prompt, n));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
  EXPECT_EQ(r.tokens, ref.greedy_tokens);
  EXPECT_EQ(r.finish, g4serve::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(r.usage.prompt_tokens(), static_cast<int>(ref.greedy_prompt.size()));
  EXPECT_EQ(r.usage.completion_tokens(), n);
  ASSERT_EQ(r.logprobs.size(), ref.greedy_logits.size());
  for (size_t i = 0; i < r.logprobs.size(); ++i) {
    EXPECT_NEAR(r.logprobs[i], LogSoftmaxAt(ref.greedy_logits[i], ref.greedy_tokens[i]), 1e-4);
  }
  // The 20-token prefill case: the one token generated after it is transformers' argmax at the
  // last position, with its log-probability.
  const auto& last = ref.prefill.logits.back();
  const int32_t want = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
  Cluster::Result r2 = cluster.Generate(GreedyRequest(ref.prefill.tokens, 1));
  ASSERT_TRUE(r2.status.ok()) << r2.status.error_message();
  ASSERT_EQ(r2.tokens.size(), 1u);
  EXPECT_EQ(r2.tokens[0], want);
  EXPECT_NEAR(r2.logprobs[0], LogSoftmaxAt(last, want), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Plans, DistributedGoldenTest,
                         ::testing::Values(Plan{"dense", 2, 2, 1}, Plan{"dense", 4, 4, 1},
                                           Plan{"moe", 2, 2, 2}, Plan{"moe", 4, 4, 2}),
                         [](const auto& info) {
                           return absl::StrCat(info.param.variant, "_tp", info.param.tp, "_ep",
                                               info.param.ep);
                         });

// Two single-rank replicas; one worker is killed: its replica goes unavailable and every later
// request is served by the other.
TEST(DistributedFailureTest, DeadWorkerLeavesTheOtherReplicaServing) {
  const auto ref = testing::LoadGoldenReference("dense");
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 1, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  cluster.worker(0).Kill(SIGKILL);
  // The health checker notices within a few intervals; requests meanwhile may fail once.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (cluster.ReadyReplicas() != 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(cluster.ReadyReplicas(), 1) << cluster.Logs();
  for (int i = 0; i < 4; ++i) {
    Cluster::Result r = cluster.Generate(GreedyRequest(ref.greedy_prompt, 4));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
    EXPECT_EQ(r.tokens, std::vector<int32_t>(ref.greedy_tokens.begin(), ref.greedy_tokens.begin() + 4));
  }
}

// A worker that stops answering (SIGSTOP) is found by the health checker's deadline.
TEST(DistributedFailureTest, HungWorkerIsMarkedUnavailable) {
  const auto ref = testing::LoadGoldenReference("dense");
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 1, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/2));
  cluster.worker(1).Kill(SIGSTOP);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (cluster.ReadyReplicas() != 1 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(cluster.ReadyReplicas(), 1) << cluster.Logs();
  Cluster::Result r = cluster.Generate(GreedyRequest(ref.greedy_prompt, 4));
  EXPECT_TRUE(r.status.ok()) << r.status.error_message();
  cluster.worker(1).Kill(SIGCONT);
}

// When every replica is down the API says UNAVAILABLE, promptly.
TEST(DistributedFailureTest, NoReplicaIsUnavailable) {
  const auto ref = testing::LoadGoldenReference("dense");
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 2, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  cluster.worker(1).Kill(SIGKILL);
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (cluster.ReadyReplicas() != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  Cluster::Result r = cluster.Generate(GreedyRequest(ref.greedy_prompt, 4), absl::Seconds(20));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
}

// A restarted coordinator (same address, as behind a Kubernetes Service) gets its workers back:
// their heartbeat finds it does not know them, they tear down, register again and reload.
TEST(DistributedRecoveryTest, WorkersRegisterAgainWithARestartedCoordinator) {
  const auto ref = testing::LoadGoldenReference("dense");
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 2, 1));
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  Cluster::Result before = cluster.Generate(GreedyRequest(ref.greedy_prompt, 4));
  ASSERT_TRUE(before.status.ok()) << before.status.error_message() << "\n" << cluster.Logs();
  ASSERT_EQ(before.tokens.size(), 4u);

  ASSERT_TRUE(cluster.RestartCoordinator());
  ASSERT_TRUE(cluster.WaitForReplicas(1, absl::Seconds(30))) << cluster.Logs();
  Cluster::Result after = cluster.Generate(GreedyRequest(ref.greedy_prompt, 4));
  ASSERT_TRUE(after.status.ok()) << after.status.error_message() << "\n" << cluster.Logs();
  EXPECT_EQ(after.tokens, before.tokens);
  EXPECT_EQ(after.tokens,
            std::vector<int32_t>(ref.greedy_tokens.begin(), ref.greedy_tokens.begin() + 4));
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(cluster.worker(i).Log().find("registering again"), std::string::npos)
        << cluster.Logs();
  }
}

// Text in, text out, through the model's tokenizer.
TEST(DistributedTextTest, TextPromptReturnsText) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 2, 1));
  ASSERT_TRUE(cluster.Start(1));
  g4serve::v1::GenerateRequest req;
  req.set_text("<bos>Hello, how are you?");
  req.mutable_stopping()->set_max_tokens(8);
  req.mutable_stopping()->set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  Cluster::Result r = cluster.Generate(req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
  EXPECT_EQ(r.tokens.size(), 8u);
  EXPECT_FALSE(r.text.empty());
}

// Two planes, two ports (docs/security.md): the Fleet service and the store answer only on the
// internal port, the Inference API only on the public one; the workers registered on the
// internal one and the replica serves; the store refuses keys outside a load in progress.
TEST(DistributedPlanesTest, FleetIsOnlyOnTheInternalPort) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 2, 2, 1));
  ASSERT_TRUE(cluster.Start(1));
  auto store_get = [](const std::string& address) {
    auto fleet = g4serve::worker::v1::Fleet::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    g4serve::worker::v1::StoreGetRequest req;
    req.set_key("planes-test/absent");
    req.set_timeout_ms(1);
    g4serve::worker::v1::StoreGetResponse resp;
    return fleet->StoreGet(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(store_get(cluster.address()), grpc::StatusCode::UNIMPLEMENTED);
  // Not under a load in progress (issue 12: no writes into, or memory growth of, the store).
  EXPECT_EQ(store_get(cluster.internal_address()), grpc::StatusCode::FAILED_PRECONDITION);
  {
    auto fleet = g4serve::worker::v1::Fleet::NewStub(
        grpc::CreateChannel(cluster.internal_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    g4serve::worker::v1::StoreSetRequest req;
    req.set_key("replica0/load0/rank1");
    req.set_value(std::string(64 << 10, 'x'));
    g4serve::worker::v1::StoreSetResponse resp;
    EXPECT_EQ(fleet->StoreSet(&ctx, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  auto inference = g4serve::v1::Inference::NewStub(
      grpc::CreateChannel(cluster.internal_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  g4serve::v1::ListModelsResponse models;
  EXPECT_EQ(inference->ListModels(&ctx, g4serve::v1::ListModelsRequest(), &models).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  g4serve::v1::GenerateRequest req;
  req.set_text("Hello");
  req.mutable_stopping()->set_max_tokens(2);
  Cluster::Result r = cluster.Generate(req);
  EXPECT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
}

// Issue 9 #6 through the public API: with --max-num-seqs 1 a 33-token prompt is served (it used
// to wait in the queue forever), and a prompt the KV pools cannot hold even alone gets
// INVALID_ARGUMENT at once, naming the limit.
TEST(DistributedAdmissionTest, SmallKvPoolsServeWhatFitsAndRefuseWhatNeverCan) {
  Cluster cluster(ClusterOf(testing::GoldenDir("dense"), 1, 1, 1,
                            {"--max-num-seqs", "1", "--num-global-pages", "3"}));
  ASSERT_TRUE(cluster.Start(/*replicas=*/1));
  Cluster::Result r = cluster.Generate(GreedyRequest(std::vector<int32_t>(33, 7), 4));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message() << "\n" << cluster.Logs();
  EXPECT_EQ(r.tokens.size(), 4u);
  r = cluster.Generate(GreedyRequest(std::vector<int32_t>(48, 7), 4), absl::Seconds(20));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << r.status.error_message();
  EXPECT_NE(r.status.error_message().find("the KV cache holds at most 48 tokens"),
            std::string::npos)
      << r.status.error_message();
}

}  // namespace
}  // namespace g4
