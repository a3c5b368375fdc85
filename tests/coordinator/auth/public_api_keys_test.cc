// API keys on the coordinator's public APIs against fake workers: HTTP answers 401 with OpenAI's
// error body and WWW-Authenticate without a valid `Authorization: Bearer` key, gRPC answers
// UNAUTHENTICATED without the authorization metadata; a key is served; /health is open unless
// protected; request ids and Abort are scoped to the key.
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "coordinator/auth/api_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/coordinator/http/http_test_fixture.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;
namespace pb = ::g4serve::v1;

constexpr char kKeyA[] = "sk-test-alpha-0123456789";
constexpr char kKeyB[] = "sk-test-beta-9876543210";

class PublicApiKeysTest : public ::g4::testing::HttpServerTest {
 protected:
  HttpServerOptions HttpOptions() override {
    HttpServerOptions o = HttpServerTest::HttpOptions();
    o.api_keys = &keys_;
    o.protect_health = protect_health_;
    return o;
  }
  void SetUp() override {
    absl::StatusOr<ApiKeys> keys = ApiKeys::Create({kKeyA, kKeyB});
    ASSERT_TRUE(keys.ok());
    keys_ = *std::move(keys);
    HttpServerTest::SetUp();
    service_->SetApiKeys(&keys_);
  }

  httplib::Result PostWith(const std::string& authorization, const std::string& path,
                           const std::string& body) {
    httplib::Headers headers;
    if (!authorization.empty()) headers.emplace("Authorization", authorization);
    return client_->Post(path.c_str(), headers, body, "application/json");
  }

  static void ExpectUnauthorized(const httplib::Result& r) {
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
    const Json j = Json::parse(r->body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_EQ(j["error"]["code"], "invalid_api_key");
    EXPECT_TRUE(j["error"]["param"].is_null());
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
    EXPECT_THAT(r->body, Not(HasSubstr("sk-test")));
  }

  ApiKeys keys_;
  bool protect_health_ = false;
};

TEST_F(PublicApiKeysTest, HttpNeedsAKey) {
  StartWorkers(1);
  const std::string body = R"({"model":"dense","prompt":"Hello","max_tokens":4})";
  ExpectUnauthorized(PostWith("", "/v1/completions", body));
  ExpectUnauthorized(PostWith("Bearer sk-test-wrong", "/v1/completions", body));
  ExpectUnauthorized(PostWith(absl::StrCat("Basic ", kKeyA), "/v1/completions", body));
  ExpectUnauthorized(
      PostWith("", "/v1/chat/completions", R"({"messages":[{"role":"user","content":"x"}]})"));
  ExpectUnauthorized(client_->Get("/v1/models"));
  ExpectUnauthorized(client_->Get("/v1/nothing"));  // no route list for strangers
  for (const char* key : {kKeyA, kKeyB}) {
    auto r = PostWith(absl::StrCat("Bearer ", key), "/v1/completions", body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Json::parse(r->body)["usage"]["completion_tokens"], 4);
  }
  httplib::Headers headers = {{"Authorization", absl::StrCat("Bearer ", kKeyA)}};
  auto models = client_->Get("/v1/models", headers);
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  // Probes need no key by default.
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
}

class ProtectedHealthTest : public PublicApiKeysTest {
 protected:
  void SetUp() override {
    protect_health_ = true;
    PublicApiKeysTest::SetUp();
  }
};

TEST_F(ProtectedHealthTest, HealthNeedsAKeyToo) {
  StartWorkers(1);
  ExpectUnauthorized(client_->Get("/health"));
  auto r = client_->Get("/health", {{"Authorization", absl::StrCat("Bearer ", kKeyB)}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(PublicApiKeysTest, GrpcNeedsAKey) {
  StartWorkers(1);
  pb::GenerateRequest request;
  request.set_text("Hello");
  request.mutable_stopping()->set_max_tokens(4);
  auto generate = [&](const std::string& authorization) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
    auto reader = stub_->Generate(&ctx, request);
    pb::GenerateResponse r;
    int tokens = 0;
    while (reader->Read(&r)) tokens += r.tokens_size();
    grpc::Status status = reader->Finish();
    EXPECT_THAT(status.error_message(), Not(HasSubstr("sk-test")));
    return std::make_pair(status, tokens);
  };
  EXPECT_EQ(generate("").first.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(generate("Bearer sk-test-wrong").first.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  auto [status, tokens] = generate(absl::StrCat("Bearer ", kKeyA));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(tokens, 4);  // the fake worker's four
  {
    grpc::ClientContext ctx;
    pb::ListModelsResponse resp;
    EXPECT_EQ(stub_->ListModels(&ctx, pb::ListModelsRequest(), &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    pb::TokenizeRequest tr;
    tr.set_text("Hi");
    pb::TokenizeResponse resp;
    EXPECT_EQ(stub_->Tokenize(&ctx, tr, &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", kKeyB));
    pb::ListModelsResponse resp;
    EXPECT_TRUE(stub_->ListModels(&ctx, pb::ListModelsRequest(), &resp).ok());
  }
}

TEST_F(PublicApiKeysTest, RequestIdsAndAbortBelongToTheKey) {
  StartWorkers(1);
  workers_[0]->endless = true;
  grpc::ClientContext alice;
  alice.AddMetadata("authorization", absl::StrCat("Bearer ", kKeyA));
  pb::GenerateRequest request;
  request.set_text("Hi");
  request.set_request_id("victim-1");
  auto reader = stub_->Generate(&alice, request);
  pb::GenerateResponse r;
  ASSERT_TRUE(reader->Read(&r));
  auto abort = [&](const std::string& key, const std::string& ns) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", absl::StrCat("Bearer ", key));
    if (!ns.empty()) ctx.AddMetadata("g4-namespace", ns);
    pb::AbortRequest ar;
    ar.set_request_id("victim-1");
    pb::AbortResponse resp;
    EXPECT_TRUE(stub_->Abort(&ctx, ar, &resp).ok());
    return resp.found();
  };
  EXPECT_FALSE(abort(kKeyB, ""));   // another key, same host
  EXPECT_FALSE(abort(kKeyA, "x"));  // the key's own sub-namespace is another caller
  EXPECT_TRUE(abort(kKeyA, ""));
  pb::GenerateResponse last;
  while (reader->Read(&r)) last = r;
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.finish_reason(), pb::FINISH_REASON_ABORTED);
}

}  // namespace
}  // namespace g4
