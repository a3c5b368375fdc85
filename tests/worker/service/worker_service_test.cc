// The worker's gRPC surface end to end on loopback: a fake coordinator (Fleet: Register and the
// rendezvous store) and two WorkerServers in this process forming a 2-rank replica of the tiny
// dense golden model.
#include "worker/service/worker_service.h"

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/service/fake_fleet.h"
#include "tests/worker/model/golden_reference.h"
#include "worker/comm/key_value_store.h"
#include "worker/service/grpc_key_value_store.h"
#include "proto/grpc_status.h"
#include "worker/service/worker_server.h"

namespace g4 {
namespace {

namespace wv1 = ::g4serve::worker::v1;
using ::testing::HasSubstr;

// The coordinator's side of the worker protocol, in memory.
using ::g4::testing::FakeFleet;

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
}

class WorkerServiceTest : public ::testing::Test {
 protected:
  static constexpr int kWorkers = 2;

  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &fleet_port_);
    builder.RegisterService(&fleet_);
    fleet_server_ = builder.BuildAndStart();
    ASSERT_NE(fleet_server_, nullptr);
    ASSERT_GT(fleet_port_, 0);
    for (int r = 0; r < kWorkers; ++r) {
      WorkerServerOptions o;
      o.coordinator = absl::StrCat("127.0.0.1:", fleet_port_);
      o.register_timeout = absl::Seconds(10);
      absl::StatusOr<std::unique_ptr<WorkerServer>> s = WorkerServer::Start(o);
      ASSERT_TRUE(s.ok()) << s.status();
      ASSERT_GT((*s)->port(), 0);
      absl::StatusOr<std::string> id = (*s)->Register();
      ASSERT_TRUE(id.ok()) << id.status();
      stubs_.push_back(wv1::Worker::NewStub(
          grpc::CreateChannel((*s)->address(), grpc::InsecureChannelCredentials())));
      workers_.push_back(std::move(*s));
    }
  }

  void TearDown() override {
    // The leader first: its shutdown descriptor ends the follower's loop.
    for (auto& w : workers_) w.reset();
    if (fleet_server_) fleet_server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  wv1::LoadRequest MakeLoad(const std::string& dir, int rank, int world) {
    wv1::LoadRequest req;
    req.set_model_dir(dir);
    req.set_rank(rank);
    req.set_world_size(world);
    req.set_expert_parallel_size(1);
    req.set_store_prefix(absl::StrCat("replica0/load", ++load_counter_));
    req.set_collective_timeout_ms(10000);
    return req;
  }

  // Loads all workers as one replica, concurrently (they rendezvous through the fake store).
  std::vector<grpc::Status> LoadReplica(const std::string& dir,
                                        const wv1::EngineOptions& engine = {}) {
    std::vector<grpc::Status> statuses(kWorkers);
    std::vector<std::thread> threads;
    const int counter = ++load_counter_;
    for (int r = 0; r < kWorkers; ++r) {
      threads.emplace_back([&, r] {
        wv1::LoadRequest req = MakeLoad(dir, r, kWorkers);
        req.set_store_prefix(absl::StrCat("replica0/load", counter));
        *req.mutable_engine() = engine;
        grpc::ClientContext ctx;
        SetDeadline(&ctx, absl::Seconds(60));
        wv1::LoadResponse resp;
        statuses[r] = stubs_[r]->Load(&ctx, req, &resp);
        if (statuses[r].ok()) {
          EXPECT_GT(resp.weight_bytes(), 0);
          EXPECT_GE(resp.load_seconds(), 0);
        }
      });
    }
    for (auto& t : threads) t.join();
    return statuses;
  }

  void LoadDense() {
    for (const grpc::Status& s : LoadReplica(testing::GoldenDir("dense"))) {
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
  }

  wv1::HealthResponse Health(int r) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    wv1::HealthResponse resp;
    grpc::Status s = stubs_[r]->Health(&ctx, wv1::HealthRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // Waits (bounded) until the leader reports nothing running or waiting.
  bool WaitIdle(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      const wv1::HealthResponse h = Health(0);
      if (h.running() == 0 && h.waiting() == 0) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  FakeFleet fleet_;
  int fleet_port_ = 0;
  int load_counter_ = 0;
  std::unique_ptr<grpc::Server> fleet_server_;
  std::vector<std::unique_ptr<WorkerServer>> workers_;
  std::vector<std::unique_ptr<wv1::Worker::Stub>> stubs_;
};

struct StreamResult {
  grpc::Status status;
  std::vector<int32_t> tokens;
  std::vector<wv1::WorkerGenerateResponse> responses;
};

StreamResult RunGenerate(wv1::Worker::Stub& stub, const wv1::WorkerGenerateRequest& req,
                         absl::Duration timeout = absl::Seconds(30)) {
  StreamResult r;
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  auto reader = stub.Generate(&ctx, req);
  wv1::WorkerGenerateResponse resp;
  while (reader->Read(&resp)) {
    for (const auto& t : resp.tokens()) r.tokens.push_back(t.token_id());
    r.responses.push_back(resp);
  }
  r.status = reader->Finish();
  return r;
}

wv1::WorkerGenerateRequest GreedyRequest(const std::string& id,
                                         const testing::GoldenReference& ref) {
  wv1::WorkerGenerateRequest req;
  req.set_request_id(id);
  for (int32_t t : ref.greedy_prompt) req.add_prompt_token_ids(t);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(static_cast<int>(ref.greedy_tokens.size()));
  req.mutable_stopping()->set_ignore_eos(true);
  return req;
}

TEST_F(WorkerServiceTest, RegistersWithTheCoordinator) {
  const std::vector<wv1::RegisterRequest> reg = fleet_.registered();
  ASSERT_EQ(reg.size(), 2u);
  for (int r = 0; r < kWorkers; ++r) {
    EXPECT_EQ(reg[r].address(), workers_[r]->address());
    EXPECT_EQ(reg[r].device().kind(), "cpu");
    EXPECT_FALSE(reg[r].device().name().empty());
    EXPECT_GT(reg[r].device().memory_bytes(), 0);
  }
  EXPECT_EQ(Health(0).state(), wv1::WORKER_STATE_IDLE);
}

TEST_F(WorkerServiceTest, GreedyGenerateMatchesTheGoldenTokens) {
  LoadDense();
  for (int r = 0; r < kWorkers; ++r) {
    const wv1::HealthResponse h = Health(r);
    EXPECT_EQ(h.state(), wv1::WORKER_STATE_READY) << h.error();
  }
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest("greedy", ref));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ref.greedy_tokens);
  ASSERT_FALSE(r.responses.empty());
  const wv1::WorkerGenerateResponse& last = r.responses.back();
  EXPECT_EQ(last.finish_reason(), g4serve::v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().prompt_tokens(), static_cast<int>(ref.greedy_prompt.size()));
  EXPECT_EQ(last.usage().completion_tokens(), static_cast<int>(ref.greedy_tokens.size()));
  for (size_t i = 0; i + 1 < r.responses.size(); ++i) {
    EXPECT_EQ(r.responses[i].finish_reason(), g4serve::v1::FINISH_REASON_UNSPECIFIED);
  }
  EXPECT_TRUE(WaitIdle(absl::Seconds(5)));
}

// Queue time on the first message only; Health carries the leader's engine stats; the paged-KV
// engine options reach the engine (block_size 4 so that the prompt has full, reusable blocks).
TEST_F(WorkerServiceTest, HealthReportsEngineStatsAndFirstMessageHasQueueTime) {
  wv1::EngineOptions engine;
  engine.set_block_size(4);
  engine.set_num_global_pages(256);
  engine.set_num_sliding_pages(256);
  for (const grpc::Status& s : LoadReplica(testing::GoldenDir("dense"), engine)) {
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const int64_t prompt = static_cast<int64_t>(ref.greedy_prompt.size());
  for (const char* id : {"first", "second"}) {
    const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest(id, ref));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_FALSE(r.responses.empty());
    EXPECT_TRUE(r.responses[0].has_queue_seconds());
    EXPECT_GE(r.responses[0].queue_seconds(), 0.0);
    EXPECT_LT(r.responses[0].queue_seconds(), 30.0);
    for (size_t i = 1; i < r.responses.size(); ++i) {
      EXPECT_FALSE(r.responses[i].has_queue_seconds()) << i;
    }
  }
  ASSERT_TRUE(WaitIdle(absl::Seconds(5)));
  const wv1::HealthResponse h = Health(0);
  EXPECT_GE(h.prefix_cache_queried_tokens(), 2 * prompt);
  if (prompt > 4) {
    EXPECT_GT(h.prefix_cache_hit_tokens(), 0);
  }
  EXPECT_LE(h.prefix_cache_hit_tokens(), h.prefix_cache_queried_tokens());
  EXPECT_EQ(h.preemptions(), 0);
  EXPECT_GE(h.kv_usage_global(), 0.0);
  EXPECT_LE(h.kv_usage_global(), 1.0);
  EXPECT_GE(h.kv_usage_sliding(), 0.0);
  EXPECT_LE(h.kv_usage_sliding(), 1.0);
  // Followers run no engine: zeros.
  const wv1::HealthResponse f = Health(1);
  EXPECT_EQ(f.prefix_cache_queried_tokens(), 0);
  EXPECT_EQ(f.kv_usage_global(), 0.0);
}

TEST_F(WorkerServiceTest, PrefixCachingCanBeDisabled) {
  wv1::EngineOptions engine;
  engine.set_block_size(4);
  engine.set_enable_prefix_caching(false);
  for (const grpc::Status& s : LoadReplica(testing::GoldenDir("dense"), engine)) {
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  for (const char* id : {"first", "second"}) {
    const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest(id, ref));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.tokens, ref.greedy_tokens);
  }
  ASSERT_TRUE(WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(Health(0).prefix_cache_hit_tokens(), 0);
}

TEST_F(WorkerServiceTest, LogprobsAreStreamed) {
  LoadDense();
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  wv1::WorkerGenerateRequest req = GreedyRequest("lp", ref);
  req.mutable_sampling()->set_logprobs(3);
  req.mutable_stopping()->set_max_tokens(4);
  const StreamResult r = RunGenerate(*stubs_[0], req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  ASSERT_EQ(r.tokens.size(), 4u);
  for (const auto& resp : r.responses) {
    for (const auto& t : resp.tokens()) {
      EXPECT_LE(t.logprob(), 0);
      ASSERT_EQ(t.top_logprobs_size(), 3);
      EXPECT_EQ(t.top_logprobs(0).token_id(), t.token_id());  // greedy: the top token
    }
  }
}

TEST_F(WorkerServiceTest, InvalidSamplingIsInvalidArgumentNamingTheField) {
  LoadDense();
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  wv1::WorkerGenerateRequest req = GreedyRequest("bad", ref);
  req.mutable_sampling()->set_temperature(-1);
  StreamResult r = RunGenerate(*stubs_[0], req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("temperature"));
  EXPECT_TRUE(r.tokens.empty());

  // A stop token outside the model's vocabulary is caught by the checkpoint-aware resolution.
  req = GreedyRequest("bad2", ref);
  req.mutable_stopping()->add_stop_token_ids(1 << 30);
  r = RunGenerate(*stubs_[0], req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("stop_token_ids"));

  // The engine's own admission errors pass through with their code.
  req = GreedyRequest("bad3", ref);
  req.clear_prompt_token_ids();
  r = RunGenerate(*stubs_[0], req);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("prompt"));
}

TEST_F(WorkerServiceTest, FollowersRefuseGenerateAndAbort) {
  LoadDense();
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[1], GreedyRequest("f", ref));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(r.status.error_message(), HasSubstr("rank 1"));

  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(5));
  wv1::WorkerAbortRequest abort;
  abort.set_request_id("f");
  wv1::WorkerAbortResponse resp;
  EXPECT_EQ(stubs_[1]->Abort(&ctx, abort, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(WorkerServiceTest, GenerateBeforeLoadIsFailedPrecondition) {
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest("early", ref));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(r.status.error_message(), HasSubstr("not ready"));
}

// A request long enough (the whole 512-token context) that it is still running when the client
// goes away.
wv1::WorkerGenerateRequest LongRequest(const std::string& id) {
  wv1::WorkerGenerateRequest req;
  req.set_request_id(id);
  req.add_prompt_token_ids(2);
  req.add_prompt_token_ids(3);
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_ignore_eos(true);
  return req;
}

TEST_F(WorkerServiceTest, ClientCancellationAbortsTheSequence) {
  LoadDense();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  auto reader = stubs_[0]->Generate(&ctx, LongRequest("cancel-me"));
  wv1::WorkerGenerateResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.finish_reason(), g4serve::v1::FINISH_REASON_UNSPECIFIED);
  ctx.TryCancel();
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(WaitIdle(absl::Seconds(3)));
  // The server saw the cancellation (rather than the request running to its end).
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  while (workers_[0]->service().cancelled_streams() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(workers_[0]->service().cancelled_streams(), 1);
  // The replica keeps serving.
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest("after", ref));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ref.greedy_tokens);
}

TEST_F(WorkerServiceTest, AbortRpcFinishesTheStreamAsAborted) {
  LoadDense();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  auto reader = stubs_[0]->Generate(&ctx, LongRequest("abort-me"));
  wv1::WorkerGenerateResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  {
    grpc::ClientContext actx;
    SetDeadline(&actx, absl::Seconds(5));
    wv1::WorkerAbortRequest abort;
    abort.set_request_id("abort-me");
    wv1::WorkerAbortResponse aresp;
    ASSERT_TRUE(stubs_[0]->Abort(&actx, abort, &aresp).ok());
    EXPECT_TRUE(aresp.found());
  }
  g4serve::v1::FinishReason finish = resp.finish_reason();
  while (reader->Read(&resp)) finish = resp.finish_reason();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finish, g4serve::v1::FINISH_REASON_ABORTED);
  EXPECT_TRUE(WaitIdle(absl::Seconds(3)));
}

TEST_F(WorkerServiceTest, DeadlineAbortsTheSequence) {
  LoadDense();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Milliseconds(300));
  wv1::WorkerGenerateRequest req = LongRequest("slow");
  auto reader = stubs_[0]->Generate(&ctx, req);
  wv1::WorkerGenerateResponse resp;
  // Read slowly so the deadline passes mid-stream.
  while (reader->Read(&resp)) absl::SleepFor(absl::Milliseconds(20));
  const grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  EXPECT_TRUE(WaitIdle(absl::Seconds(3)));
}

TEST_F(WorkerServiceTest, BadModelDirFailsLoadAndTheWorkerStaysUp) {
  const std::string bad = "tests/data/golden/no-such-model";
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(20));
  wv1::LoadResponse resp;
  const grpc::Status s = stubs_[0]->Load(&ctx, MakeLoad(bad, 0, 1), &resp);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error_message(), HasSubstr(bad));
  wv1::HealthResponse h = Health(0);
  EXPECT_EQ(h.state(), wv1::WORKER_STATE_FAILED);
  EXPECT_THAT(h.error(), HasSubstr(bad));
  EXPECT_EQ(h.error(), s.error_message());

  // Still serving; a later Load retries (single-rank replica, no rendezvous).
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2, absl::Seconds(20));
  const grpc::Status ok = stubs_[0]->Load(&ctx2, MakeLoad(testing::GoldenDir("dense"), 0, 1),
                                          &resp);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  h = Health(0);
  EXPECT_EQ(h.state(), wv1::WORKER_STATE_READY);
  EXPECT_TRUE(h.error().empty());
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest("single", ref));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ref.greedy_tokens);

  // Loading again while READY is refused.
  grpc::ClientContext ctx3;
  SetDeadline(&ctx3, absl::Seconds(5));
  EXPECT_EQ(stubs_[0]->Load(&ctx3, MakeLoad(testing::GoldenDir("dense"), 0, 1), &resp)
                .error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

// Issue 12: with --model-root a Load of a directory elsewhere is PERMISSION_DENIED before the
// file system is read (its errors cannot tell what exists on the host) and changes nothing.
TEST_F(WorkerServiceTest, ModelRootRestrictsLoad) {
  WorkerServerOptions o;
  o.coordinator = absl::StrCat("127.0.0.1:", fleet_port_);
  o.register_timeout = absl::Seconds(10);
  o.model_root = "tests/data/golden";
  absl::StatusOr<std::unique_ptr<WorkerServer>> server = WorkerServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = wv1::Worker::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  for (const std::string dir : {"/etc", "tests/data/golden/../../../etc", "tests/data/goldenx",
                                "/tmp/tests/data/golden/dense", "tests/data"}) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    wv1::LoadResponse resp;
    const grpc::Status s = stub->Load(&ctx, MakeLoad(dir, 0, 1), &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << dir;
    EXPECT_THAT(s.error_message(), HasSubstr("outside this worker's --model-root"));
    grpc::ClientContext hctx;
    SetDeadline(&hctx, absl::Seconds(5));
    wv1::HealthResponse h;
    ASSERT_TRUE(stub->Health(&hctx, wv1::HealthRequest(), &h).ok());
    EXPECT_EQ(h.state(), wv1::WORKER_STATE_IDLE) << dir;
  }
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(20));
  wv1::LoadResponse resp;
  const grpc::Status ok = stub->Load(&ctx, MakeLoad("tests/data/golden/./dense", 0, 1), &resp);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
}

TEST(CheckModelRootTest, InsideOrNot) {
  EXPECT_TRUE(CheckModelRoot("", "/anything").ok());
  EXPECT_TRUE(CheckModelRoot("/models", "/models").ok());
  EXPECT_TRUE(CheckModelRoot("/models/", "/models/gemma").ok());
  EXPECT_TRUE(CheckModelRoot("/models", "/models/gemma/").ok());
  EXPECT_TRUE(CheckModelRoot("/models", "/models/a/../gemma").ok());
  EXPECT_FALSE(CheckModelRoot("/models", "/models-evil/gemma").ok());
  EXPECT_FALSE(CheckModelRoot("/models", "/models/../etc").ok());
  EXPECT_FALSE(CheckModelRoot("/models", "models/gemma").ok());
  EXPECT_FALSE(CheckModelRoot("/models/gemma", "/models").ok());
  EXPECT_FALSE(CheckModelRoot("models", "../models/x").ok());
}

TEST_F(WorkerServiceTest, InvalidLoadRequests) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(5));
  wv1::LoadResponse resp;
  EXPECT_EQ(stubs_[0]->Load(&ctx, MakeLoad(testing::GoldenDir("dense"), 2, 2), &resp)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Health(0).state(), wv1::WORKER_STATE_FAILED);
}

TEST_F(WorkerServiceTest, MissingPeerTimesOutAsFailed) {
  // Only rank 0 of a 2-rank replica shows up: the rendezvous times out.
  wv1::LoadRequest req = MakeLoad(testing::GoldenDir("dense"), 0, 2);
  req.set_collective_timeout_ms(500);
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(20));
  wv1::LoadResponse resp;
  const grpc::Status s = stubs_[0]->Load(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << s.error_message();
  const wv1::HealthResponse h = Health(0);
  EXPECT_EQ(h.state(), wv1::WORKER_STATE_FAILED);
  EXPECT_THAT(h.error(), HasSubstr("control"));
}

grpc::Status Unload(wv1::Worker::Stub& stub) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(30));
  wv1::UnloadRequest req;
  req.set_reason("test");
  wv1::UnloadResponse resp;
  return stub.Unload(&ctx, req, &resp);
}

// A migrated request: the leader continues after the tokens it is given, as the uninterrupted
// run would, and counts them in usage.
TEST_F(WorkerServiceTest, ResumedGenerateContinuesAfterTheGivenTokens) {
  LoadDense();
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  wv1::WorkerGenerateRequest req = GreedyRequest("resumed", ref);
  const int k = 3;
  for (int i = 0; i < k; ++i) req.add_resume_output_token_ids(ref.greedy_tokens[i]);
  const StreamResult r = RunGenerate(*stubs_[0], req);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, std::vector<int32_t>(ref.greedy_tokens.begin() + k, ref.greedy_tokens.end()));
  EXPECT_EQ(r.responses.back().usage().completion_tokens(),
            static_cast<int>(ref.greedy_tokens.size()));
  // Resumed tokens that already reach max_tokens are refused.
  wv1::WorkerGenerateRequest done = GreedyRequest("done", ref);
  for (int32_t t : ref.greedy_tokens) done.add_resume_output_token_ids(t);
  EXPECT_EQ(RunGenerate(*stubs_[0], done).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// Health names the load a worker holds; Unload returns every rank to IDLE and a new Load (a
// fresh prefix) forms the replica again.
TEST_F(WorkerServiceTest, UnloadReturnsToIdleAndTheReplicaCanBeLoadedAgain) {
  LoadDense();
  const std::string prefix = Health(0).store_prefix();
  EXPECT_THAT(prefix, HasSubstr("replica0/load"));
  EXPECT_EQ(Health(1).store_prefix(), prefix);
  for (int r = 0; r < kWorkers; ++r) ASSERT_TRUE(Unload(*stubs_[r]).ok());
  for (int r = 0; r < kWorkers; ++r) {
    EXPECT_EQ(Health(r).state(), wv1::WORKER_STATE_IDLE);
    EXPECT_EQ(Health(r).store_prefix(), "");
  }
  ASSERT_TRUE(Unload(*stubs_[0]).ok());  // IDLE: nothing to do
  LoadDense();
  EXPECT_NE(Health(0).store_prefix(), prefix);
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult r = RunGenerate(*stubs_[0], GreedyRequest("again", ref));
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens, ref.greedy_tokens);
}

// Drain (SIGTERM): Health says draining, new requests and loads are refused, and the drain ends
// when the coordinator releases the worker (Unload) — or at its deadline.
TEST_F(WorkerServiceTest, DrainRefusesNewWorkAndEndsWhenReleased) {
  LoadDense();
  EXPECT_FALSE(workers_[0]->Drain(absl::Milliseconds(200)));  // nobody releases it: deadline
  EXPECT_TRUE(Health(0).draining());
  EXPECT_EQ(Health(0).state(), wv1::WORKER_STATE_READY);  // its streams go on
  const testing::GoldenReference ref = testing::LoadGoldenReference("dense");
  const StreamResult refused = RunGenerate(*stubs_[0], GreedyRequest("late", ref));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("draining"));
  bool released = false;
  std::thread drain([&] { released = workers_[0]->Drain(absl::Seconds(30)); });
  const absl::Time start = absl::Now();
  ASSERT_TRUE(Unload(*stubs_[0]).ok());
  drain.join();
  EXPECT_TRUE(released);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(5));
    wv1::LoadResponse resp;
    EXPECT_EQ(stubs_[0]->Load(&ctx, MakeLoad(testing::GoldenDir("dense"), 0, 1), &resp)
                  .error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  // The follower's replica ended with its leader: nothing left to drain.
  EXPECT_TRUE(workers_[1]->Drain(absl::Seconds(30)));
}

TEST(GrpcKeyValueStoreTest, SetGetAndTimeout) {
  FakeFleet fleet;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fleet);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  GrpcKeyValueStore store(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  ASSERT_TRUE(store.Set("a", std::string("x\0y", 3)).ok());
  absl::StatusOr<std::string> v = store.Get("a", absl::Seconds(1));
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::string("x\0y", 3));
  const absl::Time start = absl::Now();
  v = store.Get("missing", absl::Milliseconds(200));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("missing"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  // A Get that waits sees a later Set.
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_TRUE(store.Set("late", "v").ok());
  });
  v = store.Get("late", absl::Seconds(5));
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "v");
  server->Shutdown();
  // Coordinator gone: an error, not a hang.
  v = store.Get("a", absl::Milliseconds(100));
  EXPECT_FALSE(v.ok());
}

}  // namespace
}  // namespace g4
