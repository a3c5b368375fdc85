#include "coordinator/api/inference_service.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/fleet/fleet_manager.h"
#include "gmock/gmock.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_worker.h"

namespace g4 {
namespace {

using ::g4::testing::Codec;
using ::g4::testing::Eventually;
using ::g4::testing::TinyConfig;

using ::g4::testing::FakeWorker;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;
namespace pb = ::g4serve::v1;

std::vector<int> Ids(const std::string& text) {
  std::vector<int32_t> ids = *Codec()->Encode(text, false);
  return std::vector<int>(ids.begin(), ids.end());
}

struct Result {
  std::vector<pb::GenerateResponse> responses;
  grpc::Status status;
  std::string text() const {
    std::string t;
    for (const auto& r : responses) t += r.text();
    return t;
  }
  std::vector<int> tokens() const {
    std::vector<int> ids;
    for (const auto& r : responses) {
      for (const auto& t : r.tokens()) ids.push_back(t.token_id());
    }
    return ids;
  }
};

class InferenceServiceTest : public ::g4::testing::CoordinatorFixture {
 protected:
  // Starts a coordinator with `num_workers` fake workers (tensor-parallel-size 1) and waits until
  // all replicas are READY.
  void Start(int num_workers, bool with_tokenizer = true) {
    InferenceOptions io = TestInferenceOptions();
    io.stall_limit = stall_limit_;
    StartCoordinator(TestFleetOptions(), io, with_tokenizer ? Codec() : nullptr, std::nullopt);
    StartWorkers(num_workers);
  }

  Result Generate(const pb::GenerateRequest& request,
                  absl::Duration deadline = absl::Seconds(30)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    Result result;
    auto reader = stub_->Generate(&ctx, request);
    pb::GenerateResponse r;
    while (reader->Read(&r)) result.responses.push_back(r);
    result.status = reader->Finish();
    return result;
  }

  absl::Duration stall_limit_ = absl::Seconds(30);
};

pb::GenerateRequest TextRequest(const std::string& text) {
  pb::GenerateRequest r;
  r.set_text(text);
  return r;
}

TEST_F(InferenceServiceTest, RelaysTokensAndText) {
  Start(1);
  const std::vector<int> out = Ids("Hello world, how are you?");
  ASSERT_GE(out.size(), 4u);
  workers_[0]->script = {{out[0]}, {out[1], out[2]}, std::vector<int>(out.begin() + 3, out.end())};
  pb::GenerateRequest request = TextRequest("Hi there");
  request.set_request_id("req-1");
  request.mutable_sampling()->set_temperature(0);
  const Result result = Generate(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  ASSERT_EQ(result.responses.size(), 3u);
  EXPECT_EQ(result.text(), "Hello world, how are you?");
  EXPECT_THAT(result.tokens(), ElementsAreArray(out));
  const pb::GenerateResponse& last = result.responses.back();
  EXPECT_EQ(last.request_id(), "req-1");
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_LENGTH);
  EXPECT_EQ(result.responses[0].finish_reason(), pb::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(last.usage().prompt_tokens(), static_cast<int>(Ids("Hi there").size()));
  EXPECT_EQ(last.usage().completion_tokens(), static_cast<int>(out.size()));
  absl::MutexLock lock(&workers_[0]->mu);
  // The engine's ids are global: the worker gets an unguessable id of its own.
  EXPECT_THAT(workers_[0]->last_generate.request_id(), ::testing::MatchesRegex("g4w-[0-9a-f]{32}"));
  EXPECT_THAT(workers_[0]->last_generate.prompt_token_ids(), ElementsAreArray(Ids("Hi there")));
  EXPECT_EQ(workers_[0]->last_generate.sampling().temperature(), 0);
}

TEST_F(InferenceServiceTest, StopStringAcrossTokensCancelsWorker) {
  Start(1);
  std::vector<int> out = Ids("Hello world, this is a test");
  for (int i = 0; i < 30; ++i) out.push_back(Ids(" more")[0]);
  workers_[0]->script.clear();
  for (int id : out) workers_[0]->script.push_back({id});
  workers_[0]->step_delay = absl::Milliseconds(20);
  pb::GenerateRequest request = TextRequest("Hi");
  request.mutable_stopping()->add_stop("never");
  request.mutable_stopping()->add_stop("is a");
  const Result result = Generate(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.text(), "Hello world, this ");
  const pb::GenerateResponse& last = result.responses.back();
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_STOP);
  EXPECT_EQ(last.matched_stop(), "is a");
  EXPECT_EQ(last.usage().completion_tokens(), static_cast<int>(result.tokens().size()));
  EXPECT_LT(result.tokens().size(), out.size());
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_cancelled.load(); }));
}

TEST_F(InferenceServiceTest, StopTokenTextIsNotEmitted) {
  Start(1);
  const std::vector<int> out = Ids("Done.");
  workers_[0]->script = {out, {106}};
  workers_[0]->finish = pb::FINISH_REASON_STOP;
  workers_[0]->matched_stop_token = 106;
  const Result result = Generate(TextRequest("Hi"));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.text(), "Done.");
  EXPECT_EQ(result.responses.back().finish_reason(), pb::FINISH_REASON_STOP);
  EXPECT_EQ(result.responses.back().matched_stop(), Codec()->TokenText(106));
  EXPECT_EQ(result.tokens().back(), 106);
}

TEST_F(InferenceServiceTest, ChatJsonRendersTemplateWithBos) {
  Start(1);
  pb::GenerateRequest request;
  request.set_chat_json(R"({"messages": [{"role": "user", "content": "Hi"}]})");
  const Result result = Generate(request);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  {
    absl::MutexLock lock(&workers_[0]->mu);
    ASSERT_GT(workers_[0]->last_generate.prompt_token_ids_size(), 1);
    EXPECT_EQ(workers_[0]->last_generate.prompt_token_ids(0), 2);  // <bos>
  }
  pb::GenerateRequest bad;
  bad.set_chat_json("{not json");
  const Result r = Generate(bad);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("chat_json"));
}

TEST_F(InferenceServiceTest, ValidationErrors) {
  Start(1);
  pb::GenerateRequest r = TextRequest("Hi");
  r.mutable_sampling()->set_temperature(-1);
  Result result = Generate(r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("temperature"));

  r = TextRequest("Hi");
  r.mutable_sampling()->set_top_p(1.5);
  result = Generate(r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("top_p"));

  r = TextRequest("Hi");
  r.set_model("other-model");
  result = Generate(r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(result.status.error_message(), HasSubstr("other-model"));

  result = Generate(pb::GenerateRequest());
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("prompt"));

  r = pb::GenerateRequest();
  r.mutable_token_ids()->add_ids(5);
  r.mutable_token_ids()->add_ids(300000);
  result = Generate(r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("token_ids[1]"));

  r = pb::GenerateRequest();
  for (int i = 0; i < 600; ++i) r.mutable_token_ids()->add_ids(5);
  result = Generate(r);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("maximum context of 512"));

  EXPECT_EQ(workers_[0]->generate_calls.load(), 0);
}

TEST_F(InferenceServiceTest, WithoutTokenizerOnlyTokenIdsWork) {
  Start(1, /*with_tokenizer=*/false);
  Result result = Generate(TextRequest("Hi"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(result.status.error_message(), HasSubstr("model has no tokenizer"));
  pb::GenerateRequest r;
  r.mutable_token_ids()->add_ids(2);
  r.mutable_token_ids()->add_ids(7);
  result = Generate(r);
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(result.text(), "");
  EXPECT_THAT(result.tokens(), ElementsAreArray({10, 11, 12, 13}));
  grpc::ClientContext ctx;
  pb::TokenizeRequest tr;
  tr.set_text("x");
  pb::TokenizeResponse tresp;
  EXPECT_EQ(stub_->Tokenize(&ctx, tr, &tresp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(InferenceServiceTest, ClientCancelCancelsWorkerCall) {
  Start(1);
  workers_[0]->endless = true;
  workers_[0]->step_delay = absl::Milliseconds(10);
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, TextRequest("Hi"));
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ASSERT_TRUE(reader->Read(&r));
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_cancelled.load(); }));
  EXPECT_TRUE(Eventually([&] { return service_->InFlightRequests() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->InFlight(0) == 0; }));
}

TEST_F(InferenceServiceTest, DeadlineCancelsWorkerCall) {
  Start(1);
  workers_[0]->endless = true;
  const Result result = Generate(TextRequest("Hi"), absl::Milliseconds(300));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_done.load(); }));
}

TEST_F(InferenceServiceTest, AbortByRequestId) {
  Start(1);
  workers_[0]->endless = true;
  grpc::ClientContext ctx;
  pb::GenerateRequest request = TextRequest("Hi");
  request.set_request_id("abort-me");
  auto reader = stub_->Generate(&ctx, request);
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  {
    grpc::ClientContext actx;
    pb::AbortRequest ar;
    ar.set_request_id("abort-me");
    pb::AbortResponse aresp;
    ASSERT_TRUE(stub_->Abort(&actx, ar, &aresp).ok());
    EXPECT_TRUE(aresp.found());
  }
  pb::GenerateResponse last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_ABORTED);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_cancelled.load(); }));
  grpc::ClientContext actx;
  pb::AbortRequest ar;
  ar.set_request_id("abort-me");
  pb::AbortResponse aresp;
  ASSERT_TRUE(stub_->Abort(&actx, ar, &aresp).ok());
  EXPECT_FALSE(aresp.found());
}

// Request ids belong to their caller (the g4-namespace metadata, else the peer's host): another
// caller can neither abort a request nor take its id (which used to give the victim 409), and
// the owner's Abort ends it with finish_reason ABORTED, never STOP.
TEST_F(InferenceServiceTest, RequestIdsAndAbortAreScopedToTheCaller) {
  Start(1);
  workers_[0]->endless = true;
  grpc::ClientContext alice;
  alice.AddMetadata("g4-namespace", "alice");
  pb::GenerateRequest request = TextRequest("Hi");
  request.set_request_id("victim-1");
  auto reader = stub_->Generate(&alice, request);
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.request_id(), "victim-1");
  auto abort = [&](const std::string& ns) {
    grpc::ClientContext ctx;
    if (!ns.empty()) ctx.AddMetadata("g4-namespace", ns);
    pb::AbortRequest ar;
    ar.set_request_id("victim-1");
    pb::AbortResponse resp;
    EXPECT_TRUE(stub_->Abort(&ctx, ar, &resp).ok());
    return resp.found();
  };
  EXPECT_FALSE(abort("mallory"));
  EXPECT_FALSE(abort(""));  // no metadata: the peer's host, another caller
  // Another caller may use the same id at the same time.
  const Result mallory = [&] {
    grpc::ClientContext ctx;
    ctx.AddMetadata("g4-namespace", "mallory");
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(300)));
    Result result;
    auto other = stub_->Generate(&ctx, request);
    pb::GenerateResponse m;
    while (other->Read(&m)) result.responses.push_back(m);
    result.status = other->Finish();
    return result;
  }();
  EXPECT_EQ(mallory.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(mallory.responses.empty());
  // The same caller cannot.
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("g4-namespace", "alice");
    auto dup = stub_->Generate(&ctx, request);
    while (dup->Read(&r)) {
    }
    EXPECT_EQ(dup->Finish().error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  EXPECT_TRUE(abort("alice"));
  pb::GenerateResponse last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_ABORTED);
  // A namespace over the limit is refused.
  grpc::ClientContext big;
  big.AddMetadata("g4-namespace", std::string(129, 'n'));
  pb::AbortRequest ar;
  pb::AbortResponse resp;
  EXPECT_EQ(stub_->Abort(&big, ar, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(InferenceServiceTest, AssignedIdsAreUnguessable) {
  Start(1);
  const Result a = Generate(TextRequest("Hi"));
  const Result b = Generate(TextRequest("Hi"));
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_THAT(a.responses.back().request_id(), ::testing::MatchesRegex("g4-[0-9a-f]{32}"));
  EXPECT_NE(a.responses.back().request_id(), b.responses.back().request_id());
}

TEST_F(InferenceServiceTest, RetriesUnavailableOnAnotherReplica) {
  Start(2);
  workers_[0]->generate_unavailable = true;
  const Result result = Generate(TextRequest("Hi"));
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  EXPECT_EQ(workers_[0]->generate_calls.load(), 1);
  EXPECT_EQ(workers_[1]->generate_calls.load(), 1);
  workers_[1]->generate_unavailable = true;
  const Result failed = Generate(TextRequest("Hi"));
  EXPECT_EQ(failed.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(InferenceServiceTest, NoReplicaIsUnavailable) {
  Start(0);
  const Result result = Generate(TextRequest("Hi"));
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(result.status.error_message(), HasSubstr("no replica available"));
}

TEST_F(InferenceServiceTest, ListModelsAndTokenize) {
  Start(2);
  {
    grpc::ClientContext ctx;
    pb::ListModelsResponse response;
    ASSERT_TRUE(stub_->ListModels(&ctx, pb::ListModelsRequest(), &response).ok());
    ASSERT_EQ(response.models_size(), 1);
    EXPECT_EQ(response.models(0).id(), "dense");
    EXPECT_EQ(response.models(0).max_context(), 512);
    EXPECT_EQ(response.models(0).replicas_ready(), 2);
    EXPECT_EQ(response.models(0).replicas_total(), 2);
    ASSERT_EQ(response.models(0).replicas_size(), 2);
    EXPECT_EQ(response.models(0).replicas(1).index(), 1);
    EXPECT_EQ(response.models(0).replicas(1).state(), "READY");
    EXPECT_EQ(response.models(0).replicas(1).error(), "");
  }
  {
    grpc::ClientContext ctx;
    pb::TokenizeRequest request;
    request.set_text("Hello");
    request.set_add_special_tokens(true);
    pb::TokenizeResponse response;
    ASSERT_TRUE(stub_->Tokenize(&ctx, request, &response).ok());
    ASSERT_GE(response.token_ids_size(), 2);
    EXPECT_EQ(response.token_ids(0), 2);
  }
  {
    grpc::ClientContext ctx;
    pb::TokenizeRequest request;
    request.set_model("nope");
    pb::TokenizeResponse response;
    EXPECT_EQ(stub_->Tokenize(&ctx, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

// What the coordinator learns only when workers register (device memory) is reported in
// ListModels: a replica whose plan does not fit its workers is FAILED with the planner's reason.
TEST_F(InferenceServiceTest, ListModelsSaysWhyAReplicaFailed) {
  Start(0);
  workers_.push_back(std::make_unique<FakeWorker>());
  g4serve::worker::v1::RegisterRequest registration = workers_.back()->Registration();
  registration.mutable_device()->set_memory_bytes(4096);  // far too small for any plan
  ASSERT_TRUE(fleet_->Register(registration).ok());
  ASSERT_TRUE(fleet_->WaitForState(0, ReplicaState::kFailed, absl::Seconds(20)));
  grpc::ClientContext ctx;
  pb::ListModelsResponse response;
  ASSERT_TRUE(stub_->ListModels(&ctx, pb::ListModelsRequest(), &response).ok());
  ASSERT_EQ(response.models_size(), 1);
  EXPECT_EQ(response.models(0).replicas_ready(), 0);
  ASSERT_EQ(response.models(0).replicas_size(), 1);
  EXPECT_EQ(response.models(0).replicas(0).state(), "FAILED");
  EXPECT_THAT(response.models(0).replicas(0).error(), HasSubstr("does not fit"));
}

pb::GenerateRequest CountingRequest(const std::string& id) {
  pb::GenerateRequest r;
  r.set_request_id(id);
  r.mutable_token_ids()->add_ids(2);
  r.mutable_token_ids()->add_ids(3);
  return r;
}

std::vector<int> Counting(int from, int to) {
  std::vector<int> ids;
  for (int i = from; i < to; ++i) ids.push_back(100 + i);
  return ids;
}

// The text a client should see for `ids`: the detokenizer over all of them at once.
std::string TextOf(const std::vector<int>& ids) {
  auto decoder = *Codec()->NewDecoder();
  std::string text;
  for (int id : ids) text += *decoder->Feed(id);
  return text + decoder->Flush();
}

// Checks one migrated stream: every token once and in order, one final response with the
// usage counted once, the request id on every response, the text of all tokens.
void ExpectOneUninterruptedStream(const Result& r, const std::string& id, int total) {
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_EQ(r.tokens(), Counting(0, total));
  EXPECT_EQ(r.text(), TextOf(Counting(0, total)));
  int finals = 0;
  for (const pb::GenerateResponse& response : r.responses) {
    EXPECT_EQ(response.request_id(), id);
    if (response.finish_reason() == pb::FINISH_REASON_UNSPECIFIED) continue;
    ++finals;
    EXPECT_EQ(response.finish_reason(), pb::FINISH_REASON_LENGTH);
    EXPECT_EQ(response.usage().prompt_tokens(), 2);
    EXPECT_EQ(response.usage().completion_tokens(), total);
  }
  EXPECT_EQ(finals, 1);
  EXPECT_EQ(r.responses.back().finish_reason(), pb::FINISH_REASON_LENGTH);
}

// A worker that fails mid-stream (its replica lost a rank): the coordinator resubmits prompt +
// the tokens already sent to the other replica and the client's stream just goes on.
TEST_F(InferenceServiceTest, StreamContinuesOnAnotherReplicaWhenItsWorkerFails) {
  Start(2);
  for (auto& w : workers_) w->counting_tokens = 12;
  workers_[0]->fail_after = 5;  // replica 0 is picked first (lowest index)
  const Result r = Generate(CountingRequest("mig-1"));
  ExpectOneUninterruptedStream(r, "mig-1", 12);
  EXPECT_EQ(workers_[0]->generate_calls.load(), 1);
  EXPECT_EQ(workers_[1]->generate_calls.load(), 1);
  std::string first_id;
  {
    absl::MutexLock l(&workers_[0]->mu);
    first_id = workers_[0]->last_generate.request_id();
  }
  absl::MutexLock l(&workers_[1]->mu);
  const auto& resumed = workers_[1]->last_generate.resume_output_token_ids();
  EXPECT_EQ(std::vector<int>(resumed.begin(), resumed.end()), Counting(0, 5));
  // The worker-side id is the coordinator's own (never the caller's), the same on every attempt.
  EXPECT_TRUE(absl::StartsWith(first_id, "g4w-")) << first_id;
  EXPECT_EQ(workers_[1]->last_generate.request_id(), first_id);
  EXPECT_EQ(workers_[1]->last_generate.prompt_token_ids_size(), 2);
}

// A worker that stalls mid-stream (no error, just silence): the health check takes its replica
// out of service and the coordinator moves the stream to the other replica.
TEST_F(InferenceServiceTest, StreamMovesOffAReplicaTheHealthCheckTookOut) {
  Start(2);
  for (auto& w : workers_) {  // about 5 s: longer than the health timeout (2 s)
    w->counting_tokens = 200;
    w->step_delay = absl::Milliseconds(25);
  }
  Result r;
  std::thread client([&] { r = Generate(CountingRequest("mig-2")); });
  ASSERT_TRUE(Eventually([&] { return workers_[0]->generate_calls.load() == 1; }));
  absl::SleepFor(absl::Milliseconds(200));  // some tokens reach the client
  workers_[0]->health_hangs = true;          // and its replica stops answering
  client.join();
  workers_[0]->health_hangs = false;
  ExpectOneUninterruptedStream(r, "mig-2", 200);
  EXPECT_TRUE(workers_[0]->generate_cancelled.load());
  absl::MutexLock l(&workers_[1]->mu);
  EXPECT_GT(workers_[1]->last_generate.resume_output_token_ids_size(), 0);
}

// Migration is bounded: when every replica fails the request, the client gets the error, after
// the tokens it was already sent.
TEST_F(InferenceServiceTest, MigrationFailsWhenNoReplicaCanContinue) {
  Start(2);
  for (auto& w : workers_) {
    w->counting_tokens = 12;
    w->fail_after = 2;
  }
  const Result r = Generate(CountingRequest("mig-3"));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(r.status.error_message(), HasSubstr("no other replica can continue"));
  EXPECT_EQ(r.tokens(), Counting(0, 4));  // two from each replica, none twice
}

// The only replica stalls mid-stream: the stream waits for it (a short stall would let it go
// on), but not past the stall limit: then it fails with UNAVAILABLE instead of hanging.
TEST_F(InferenceServiceTest, StreamOnAStalledOnlyReplicaFailsAfterTheStallLimit) {
  stall_limit_ = absl::Seconds(1);
  Start(1);
  workers_[0]->counting_tokens = 400;
  workers_[0]->step_delay = absl::Milliseconds(25);  // 10 s: far longer than the test waits
  Result r;
  const absl::Time start = absl::Now();
  std::thread client([&] { r = Generate(CountingRequest("stall-1")); });
  ASSERT_TRUE(Eventually([&] { return workers_[0]->generate_calls.load() == 1; }));
  absl::SleepFor(absl::Milliseconds(100));
  workers_[0]->health_hangs = true;
  client.join();
  workers_[0]->health_hangs = false;
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNAVAILABLE) << r.status.error_message();
  EXPECT_THAT(r.status.error_message(), HasSubstr("no other replica can continue"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(8));  // health timeout 2 s + stall limit 1 s
  EXPECT_GT(r.tokens().size(), 0u);
}

}  // namespace
}  // namespace g4
