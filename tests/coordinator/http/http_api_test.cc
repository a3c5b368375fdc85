// The HTTP and gRPC APIs of the coordinator against fake workers: OpenAI response shapes, SSE
// framing, bad input (a table of cases, each with its status and the field its message names,
// while a good request runs alongside), a full queue, and a streaming client that disconnects.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "coordinator/api/inference_service.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/http/http_server.h"
#include "coordinator/router/router.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/coordinator/fake_worker.h"
#include "tests/coordinator/http/http_test_fixture.h"

namespace g4 {
namespace {

using ::g4::testing::Codec;
using ::g4::testing::TinyConfig;
using ::g4::testing::Eventually;

using ::g4::testing::FakeWorker;
using ::testing::HasSubstr;
using Json = nlohmann::json;
namespace pb = ::g4serve::v1;

class HttpApiTest : public ::g4::testing::HttpServerTest {};

// SSE data payloads of a response body.
std::vector<std::string> SseData(const std::string& body) {
  std::vector<std::string> data;
  for (absl::string_view event : absl::StrSplit(body, "\n\n", absl::SkipEmpty())) {
    EXPECT_TRUE(absl::StartsWith(event, "data: ")) << event;
    data.emplace_back(event.substr(6));
  }
  return data;
}

TEST_F(HttpApiTest, HealthIs503WithoutReplicasThen200) {
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  StartWorkers(1);
  r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json::parse(r->body)["replicas_ready"], 1);
}

// Device memory is known only once workers register: a replica whose plan does not fit them is
// FAILED, and /health says why.
TEST_F(HttpApiTest, HealthSaysWhyAReplicaFailed) {
  workers_.push_back(std::make_unique<FakeWorker>());
  g4serve::worker::v1::RegisterRequest registration = workers_.back()->Registration();
  registration.mutable_device()->set_memory_bytes(4096);  // far too small for any plan
  ASSERT_TRUE(fleet_->Register(registration).ok());
  ASSERT_TRUE(fleet_->WaitForState(0, ReplicaState::kFailed, absl::Seconds(20)));
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  const Json health = Json::parse(r->body);
  ASSERT_EQ(health["replicas"].size(), 1u) << r->body;
  EXPECT_EQ(health["replicas"][0]["state"], "FAILED");
  EXPECT_THAT(health["replicas"][0]["error"].get<std::string>(), HasSubstr("does not fit"));
}

TEST_F(HttpApiTest, ModelsAndUnknownRoute) {
  StartWorkers(1);
  auto r = client_->Get("/v1/models");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["id"], "dense");
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_TRUE(j["data"][0].contains("created"));
  EXPECT_TRUE(j["data"][0].contains("owned_by"));
  r = client_->Get("/v1/nothing");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_TRUE(Json::parse(r->body)["error"].contains("message"));
}

TEST_F(HttpApiTest, CompletionNonStreaming) {
  StartWorkers(1);
  auto r = Post("/v1/completions", R"({"model":"dense","prompt":"Hello","max_tokens":4})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  Json j = Json::parse(r->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_THAT(j["id"].get<std::string>(), ::testing::StartsWith("cmpl-"));
  EXPECT_EQ(j["model"], "dense");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["text"], *Codec()->tokenizer().Decode({10, 11, 12, 13}, false));
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
  absl::MutexLock lock(&workers_[0]->mu);
  EXPECT_EQ(workers_[0]->last_generate.stopping().max_tokens(), 4);
}

TEST_F(HttpApiTest, CompletionStreamingWithUsage) {
  StartWorkers(1);
  auto r = Post("/v1/completions",
                R"({"prompt":"Hello","stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  std::vector<std::string> data = SseData(r->body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(data.back(), "[DONE]");
  Json usage = Json::parse(data[data.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 4);
  std::string text;
  std::string finish;
  for (size_t i = 0; i + 2 < data.size(); ++i) {
    Json c = Json::parse(data[i]);
    EXPECT_EQ(c["object"], "text_completion");
    EXPECT_TRUE(c["usage"].is_null());
    text += c["choices"][0]["text"].get<std::string>();
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, *Codec()->tokenizer().Decode({10, 11, 12, 13}, false));
  EXPECT_EQ(finish, "length");
}

TEST_F(HttpApiTest, ChatStreamingStartsWithRole) {
  StartWorkers(1);
  auto r = Post("/v1/chat/completions",
                R"({"model":"dense","messages":[{"role":"user","content":"Hi"}],"stream":true,
                    "tools":[{"type":"function","function":{"name":"f","parameters":{}}}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  std::vector<std::string> data = SseData(r->body);
  ASSERT_GE(data.size(), 3u);
  EXPECT_EQ(data.back(), "[DONE]");
  Json first = Json::parse(data[0]);
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  Json last = Json::parse(data[data.size() - 2]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  for (const std::string& d : data) {
    if (d != "[DONE]") {
      EXPECT_EQ(Json::parse(d)["id"], first["id"]);
    }
  }
  absl::MutexLock lock(&workers_[0]->mu);
  // The tools reached the prompt as Gemma 4 declarations.
  std::string prompt = *Codec()->tokenizer().Decode(
      std::vector<int32_t>(workers_[0]->last_generate.prompt_token_ids().begin(),
                           workers_[0]->last_generate.prompt_token_ids().end()),
      false);
  EXPECT_THAT(prompt, HasSubstr("<|tool>"));
}

TEST_F(HttpApiTest, FullQueueIs429WithRetryAfter) {
  StartWorkers(1);
  workers_[0]->generate_queue_full = true;
  for (bool stream : {false, true}) {
    auto r = Post("/v1/completions",
                  absl::StrCat(R"({"prompt":"Hi","stream":)", stream ? "true" : "false", "}"));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 429) << r->body;
    EXPECT_EQ(r->get_header_value("retry-after"), "1");
    EXPECT_THAT(Json::parse(r->body)["error"]["message"].get<std::string>(),
                HasSubstr("queue full"));
  }
  grpc::ClientContext ctx;
  pb::GenerateRequest req;
  req.set_text("Hi");
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse resp;
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// A streaming client that goes away mid-stream cancels the worker call.
TEST_F(HttpApiTest, ClientDisconnectCancelsWorkerCall) {
  StartWorkers(1);
  workers_[0]->endless = true;
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt":"Hi","stream":true,"max_tokens":100000})";
  ASSERT_TRUE(SendAll(
      fd, absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       "application/json\r\nContent-Length: ", body.size(), "\r\n\r\n", body)));
  char buf[4096];
  std::string got;
  while (got.find("data: ") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    got.append(buf, n);
  }
  EXPECT_THAT(got, HasSubstr("200"));
  EXPECT_EQ(service_->InFlightRequests(), 1);
  close(fd);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_cancelled.load(); }));
  EXPECT_TRUE(Eventually([&] { return service_->InFlightRequests() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->InFlight(0) == 0; }));
}

// A client that goes away while waiting for a non-streaming answer frees its sequence at once
// too (it used to run to max_tokens).
TEST_F(HttpApiTest, NonStreamingClientDisconnectCancelsWorkerCall) {
  StartWorkers(1);
  workers_[0]->endless = true;
  const int fd = Connect();
  ASSERT_GE(fd, 0);
  const std::string body = R"({"prompt":"Hi","max_tokens":100000})";
  ASSERT_TRUE(SendAll(fd, absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: ", body.size(), "\r\n\r\n", body)));
  ASSERT_TRUE(Eventually([&] { return workers_[0]->generate_calls.load() == 1; }));
  EXPECT_EQ(service_->InFlightRequests(), 1);
  close(fd);
  EXPECT_TRUE(Eventually([&] { return workers_[0]->generate_cancelled.load(); }));
  EXPECT_TRUE(Eventually([&] { return service_->InFlightRequests() == 0; }));
  EXPECT_TRUE(Eventually([&] { return router_->InFlight(0) == 0; }));
}

// Ids the server assigns are 128 random bits, not a clock and a counter.
TEST_F(HttpApiTest, ServerAssignedIdsAreUnguessable) {
  StartWorkers(1);
  std::vector<std::string> ids;
  for (const char* path : {"/v1/completions", "/v1/completions"}) {
    auto r = Post(path, R"({"prompt":"Hi","max_tokens":1})");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    ids.push_back(Json::parse(r->body)["id"]);
  }
  auto r = Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  ids.push_back(Json::parse(r->body)["id"]);
  EXPECT_THAT(ids[0], ::testing::MatchesRegex("cmpl-[0-9a-f]{32}"));
  EXPECT_THAT(ids[2], ::testing::MatchesRegex("chatcmpl-[0-9a-f]{32}"));
  EXPECT_NE(ids[0], ids[1]);
}

// JSON nested past the limit (64) is refused with 400 before anything recurses over it, at
// every way in; the coordinator keeps serving. Each of these crashed it (stack overflow).
TEST_F(HttpApiTest, DeeplyNestedJsonIsRefusedNamingTheLimit) {
  StartWorkers(1);
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string deep_obj = [] {
    std::string s;
    for (int i = 0; i < 50000; ++i) s += R"({"a":)";
    s += "1";
    for (int i = 0; i < 50000; ++i) s += "}";
    return s;
  }();
  struct Case {
    std::string name, path, body, field;
  };
  const std::vector<Case> cases = {
      {"chat_content", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":)" + deep + "}]}", "body"},
      {"tool_parameters", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"Hi"}],"tools":[{"type":"function",)"
       R"("function":{"name":"f","parameters":{"type":"object","properties":)" +
           deep_obj + "}}}]}",
       "body"},
      {"completion_prompt", "/v1/completions", R"({"prompt":)" + deep + "}", "body"},
      // A JSON string inside the request is parsed too (tool results become structured).
      {"tool_result_string", "/v1/chat/completions",
       R"({"messages":[{"role":"user","content":"t?"},{"role":"assistant","tool_calls":[)"
       R"({"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},)"
       R"({"role":"tool","tool_call_id":"c1","content":")" +
           deep + R"("}]})",
       "messages[2].content"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = Post(c.path, c.body);
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, 400) << r->body;
    const Json e = Json::parse(r->body)["error"];
    EXPECT_THAT(e["message"].get<std::string>(),
                HasSubstr(c.field + ": JSON nested deeper than 64 levels"));
    EXPECT_EQ(e["param"], c.field);
  }
  // gRPC chat_json.
  pb::GenerateRequest req;
  req.set_chat_json(R"({"messages":[{"role":"user","content":)" + deep + "}]}");
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse resp;
  while (reader->Read(&resp)) {
  }
  grpc::Status s = reader->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("chat_json: JSON nested deeper than 64 levels"));
  // Still serving.
  auto r = Post("/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

// The body limit holds however the body arrives, and framing a proxy could read differently
// is refused; each such connection is closed after the answer.
TEST_F(HttpApiTest, BodyFramingIsStrict) {
  StartWorkers(1);
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
  const std::string body = R"({"prompt":"Hi","max_tokens":2})";
  auto chunked = [](const std::string& data, size_t chunk) {
    std::string out;
    for (size_t i = 0; i < data.size(); i += chunk) {
      const std::string part = data.substr(i, chunk);
      out += absl::StrCat(absl::Hex(part.size()), "\r\n", part, "\r\n");
    }
    return out + "0\r\n\r\n";
  };
  // Chunked within the limit works.
  std::string got = RawExchange(head + "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                chunked(body, 7));
  EXPECT_THAT(got, ::testing::StartsWith("HTTP/1.1 200")) << got;
  // 2 MiB in chunks against a 1 MiB limit: 413 once the chunks pass it.
  const std::string big = R"({"prompt":")" + std::string(2 << 20, 'a') + "\"}";
  got = RawExchange(head + "Transfer-Encoding: chunked\r\n\r\n" + chunked(big, 64 << 10));
  EXPECT_THAT(got, ::testing::StartsWith("HTTP/1.1 413")) << got.substr(0, 200);
  EXPECT_THAT(got, HasSubstr(R"("param":"body")"));
  EXPECT_THAT(got, HasSubstr("Connection: close"));
  struct Case {
    std::string name, headers;
  };
  for (const Case& c : std::vector<Case>{
           {"duplicate_content_length",
            absl::StrCat("Content-Length: ", body.size(), "\r\nContent-Length: ", body.size())},
           {"content_length_and_chunked",
            absl::StrCat("Content-Length: ", body.size(), "\r\nTransfer-Encoding: chunked")},
           {"duplicate_chunked", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"},
           {"other_coding", "Transfer-Encoding: gzip"},
       }) {
    SCOPED_TRACE(c.name);
    got = RawExchange(head + c.headers + "\r\n\r\n" + body);
    EXPECT_THAT(got, ::testing::StartsWith("HTTP/1.1 400")) << got;
    EXPECT_THAT(got, HasSubstr("Connection: close"));
    EXPECT_THAT(got, HasSubstr(R"("error":)"));
  }
  EXPECT_EQ(service_->InFlightRequests(), 0);
}

// Pipelined requests are answered in order, however many arrive at once.
TEST_F(HttpApiTest, PipelinedRequestsAreAnsweredInOrder) {
  StartWorkers(1);
  constexpr int kRequests = 2000;
  std::string pipeline;
  for (int i = 0; i < kRequests; ++i) pipeline += "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  pipeline += "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  const std::string got = RawExchange(pipeline);
  size_t answers = 0;
  for (size_t at = got.find("HTTP/1.1 200 OK"); at != std::string::npos;
       at = got.find("HTTP/1.1 200 OK", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, kRequests + 1u);
  EXPECT_THAT(got.substr(got.rfind("HTTP/1.1 200 OK")), HasSubstr(R"("object":"list")"));
}

TEST_F(HttpApiTest, PortInUseFailsToStart) {
  HttpServerOptions o;
  o.port = http_port_;
  HttpServer second(o, service_->generation());
  absl::StatusOr<int> port = second.Start();
  ASSERT_FALSE(port.ok());
  EXPECT_EQ(port.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(port.status().message(), HasSubstr("(HTTP)"));
  EXPECT_THAT(port.status().message(), HasSubstr("in use"));
}

struct BadCase {
  std::string name;
  std::string path;  // "/v1/completions" or "/v1/chat/completions"
  std::string body;
  int status;
  std::string field;  // named in the message (and `param` when set)
};

std::string ManyStops(int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += absl::StrCat(i ? "," : "", "\"s", i, "\"");
  return s + "]";
}

std::string LongTokenPrompt(int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) s += absl::StrCat(i ? "," : "", 100);
  return s + "]";
}

std::string ManyTools(int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) {
    s += absl::StrCat(i ? "," : "", R"({"type":"function","function":{"name":"f)", i, R"("}})");
  }
  return s + "]";
}

std::vector<BadCase> BadCases() {
  const std::string c = "/v1/completions";
  const std::string ch = "/v1/chat/completions";
  const std::string msg = R"("messages":[{"role":"user","content":"Hi"}])";
  return {
      {"malformed_json", c, R"({"prompt":"Hi",)", 400, "body"},
      {"not_an_object", c, R"([1,2])", 400, "body"},
      {"chat_malformed_json", ch, R"({"messages":)", 400, "body"},
      {"unknown_model", c, R"({"model":"gpt-4","prompt":"Hi"})", 404, "model"},
      {"chat_unknown_model", ch, R"({"model":"gpt-4",)" + msg + "}", 404, "model"},
      {"model_not_string", c, R"({"model":5,"prompt":"Hi"})", 400, "model"},
      {"missing_prompt", c, R"({"max_tokens":3})", 400, "prompt"},
      {"prompt_number", c, R"({"prompt":5})", 400, "prompt"},
      {"prompt_batch", c, R"({"prompt":["a","b"]})", 400, "prompt"},
      {"prompt_negative_token", c, R"({"prompt":[1,-2]})", 400, "prompt[1]"},
      {"prompt_token_out_of_vocab", c, R"({"prompt":[1,300000]})", 400, "prompt[1]"},
      {"prompt_empty", c, R"({"prompt":""})", 400, "prompt"},
      {"prompt_too_long", c, R"({"prompt":)" + LongTokenPrompt(600) + "}", 400, "prompt"},
      {"max_tokens_zero", c, R"({"prompt":"Hi","max_tokens":0})", 400, "max_tokens"},
      {"max_tokens_negative", c, R"({"prompt":"Hi","max_tokens":-5})", 400, "max_tokens"},
      {"max_tokens_string", c, R"({"prompt":"Hi","max_tokens":"ten"})", 400, "max_tokens"},
      {"max_tokens_huge", c, R"({"prompt":"Hi","max_tokens":99999999999})", 400, "max_tokens"},
      {"temperature_negative", c, R"({"prompt":"Hi","temperature":-1})", 400, "temperature"},
      {"temperature_string", c, R"({"prompt":"Hi","temperature":"hot"})", 400, "temperature"},
      {"top_p_above_one", c, R"({"prompt":"Hi","top_p":1.5})", 400, "top_p"},
      {"top_p_zero", c, R"({"prompt":"Hi","top_p":0})", 400, "top_p"},
      {"top_k_negative", c, R"({"prompt":"Hi","top_k":-2})", 400, "top_k"},
      {"min_p_above_one", c, R"({"prompt":"Hi","min_p":2})", 400, "min_p"},
      {"presence_penalty_range", c, R"({"prompt":"Hi","presence_penalty":3})", 400,
       "presence_penalty"},
      {"frequency_penalty_range", c, R"({"prompt":"Hi","frequency_penalty":-3})", 400,
       "frequency_penalty"},
      {"repetition_penalty_zero", c, R"({"prompt":"Hi","repetition_penalty":0})", 400,
       "repetition_penalty"},
      {"seed_negative", c, R"({"prompt":"Hi","seed":-1})", 400, "seed"},
      {"n_two", c, R"({"prompt":"Hi","n":2})", 400, "n"},
      {"best_of_two", c, R"({"prompt":"Hi","best_of":2})", 400, "best_of"},
      {"logprobs_too_many", c, R"({"prompt":"Hi","logprobs":21})", 400, "logprobs"},
      {"too_many_stops", c, R"({"prompt":"Hi","stop":)" + ManyStops(17) + "}", 400, "stop"},
      {"empty_stop", c, R"({"prompt":"Hi","stop":""})", 400, "stop"},
      {"stop_number", c, R"({"prompt":"Hi","stop":5})", 400, "stop"},
      {"stop_list_number", c, R"({"prompt":"Hi","stop":["a",5]})", 400, "stop[1]"},
      {"stop_token_ids_negative", c, R"({"prompt":"Hi","stop_token_ids":[-1]})", 400,
       "stop_token_ids[0]"},
      {"echo_true", c, R"({"prompt":"Hi","echo":true})", 400, "echo"},
      {"suffix", c, R"({"prompt":"Hi","suffix":"end"})", 400, "suffix"},
      {"logit_bias", c, R"({"prompt":"Hi","logit_bias":{"5":1}})", 400, "logit_bias"},
      {"unknown_field", c, R"({"prompt":"Hi","frobnicate":1})", 400, "frobnicate"},
      {"stream_not_bool", c, R"({"prompt":"Hi","stream":"yes"})", 400, "stream"},
      {"stream_options_without_stream", c,
       R"({"prompt":"Hi","stream_options":{"include_usage":true}})", 400, "stream_options"},
      {"chat_missing_messages", ch, R"({"model":"dense"})", 400, "messages"},
      {"chat_empty_messages", ch, R"({"messages":[]})", 400, "messages"},
      {"chat_bad_role", ch, R"({"messages":[{"role":"wizard","content":"Hi"}]})", 400,
       "messages[0].role"},
      {"chat_tools_not_array", ch, "{" + msg + R"(,"tools":{}})", 400, "tools"},
      {"chat_tool_without_name", ch,
       "{" + msg + R"(,"tools":[{"type":"function","function":{}}]})", 400,
       "tools[0].function.name"},
      {"chat_tool_choice_required", ch, "{" + msg + R"(,"tool_choice":"required"})", 400,
       "tool_choice"},
      {"chat_top_logprobs_without_logprobs", ch, "{" + msg + R"(,"top_logprobs":3})", 400,
       "top_logprobs"},
      {"chat_top_logprobs_too_many", ch, "{" + msg + R"(,"logprobs":true,"top_logprobs":30})",
       400, "top_logprobs"},
      {"chat_unknown_field", ch, "{" + msg + R"(,"functions":[]})", 400, "functions"},
      {"chat_max_completion_tokens_zero", ch, "{" + msg + R"(,"max_completion_tokens":0})", 400,
       "max_completion_tokens"},
      {"chat_response_format_unknown_type", ch,
       "{" + msg + R"(,"response_format":{"type":"yaml"}})", 400, "response_format.type"},
      {"chat_response_format_unsupported_keyword", ch,
       "{" + msg +
           R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x",)"
           R"("schema":{"type":"string","pattern":"a+"}}}})",
       400, "response_format.json_schema.schema"},
      {"chat_tool_choice_unknown_function", ch,
       "{" + msg +
           R"(,"tools":[{"type":"function","function":{"name":"f"}}],)"
           R"("tool_choice":{"type":"function","function":{"name":"g"}}})",
       400, "tool_choice.function.name"},
      {"chat_enable_thinking_not_bool", ch,
       "{" + msg + R"(,"chat_template_kwargs":{"enable_thinking":"yes"}})", 400,
       "chat_template_kwargs.enable_thinking"},
      {"chat_temperature_negative", ch, "{" + msg + R"(,"temperature":-0.5})", 400,
       "temperature"},
      {"chat_n_two", ch, "{" + msg + R"(,"n":3})", 400, "n"},
      // Bounds on every repeated field and string (docs/limits.md).
      {"stop_too_long", c, R"({"prompt":"Hi","stop":[")" + std::string(1025, 's') + R"("]})",
       400, "stop[0]"},
      {"too_many_stop_token_ids", c,
       R"({"prompt":"Hi","stop_token_ids":)" + LongTokenPrompt(65) + "}", 400, "stop_token_ids"},
      {"model_name_too_long", c, R"({"model":")" + std::string(300, 'm') + R"(","prompt":"Hi"})",
       400, "model"},
      {"too_many_tools", ch, "{" + msg + R"(,"tools":)" + ManyTools(129) + "}", 400, "tools"},
      {"deep_body", c, R"({"prompt":)" + std::string(65, '[') + std::string(65, ']') + "}", 400,
       "body"},
      // A text that cannot fit in the context is refused by its size, before tokenization.
      {"prompt_bytes_over_context", c, R"({"prompt":")" + std::string(600000, 'a') + R"("})",
       400, "prompt"},
  };
}

TEST_F(HttpApiTest, BadInputIsRejectedWithoutAffectingOtherRequests) {
  StartWorkers(1);
  workers_[0]->step_delay = absl::Milliseconds(20);
  workers_[0]->script = std::vector<std::vector<int>>(50, {10});
  // A good request runs alongside the bad ones.
  int good_status = 0;
  std::string good_body;
  std::thread alongside([&] {
    httplib::Client other("127.0.0.1", http_port_);
    other.set_read_timeout(std::chrono::seconds(20));
    auto good = other.Post("/v1/completions", R"({"prompt":"Hi","max_tokens":50,"stream":true})",
                           "application/json");
    if (good) {
      good_status = good->status;
      good_body = good->body;
    }
  });
  const std::vector<BadCase> cases = BadCases();
  ASSERT_GE(cases.size(), 30u);
  for (const BadCase& bad : cases) {
    SCOPED_TRACE(bad.name);
    auto r = Post(bad.path, bad.body);
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, bad.status) << r->body;
    Json j = Json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    ASSERT_TRUE(j.contains("error")) << r->body;
    const Json& e = j["error"];
    ASSERT_TRUE(e["message"].is_string());
    EXPECT_THAT(e["message"].get<std::string>(), HasSubstr(bad.field));
    EXPECT_TRUE(e.contains("type") && e.contains("param") && e.contains("code")) << r->body;
    if (bad.status == 400) {
      EXPECT_EQ(e["param"], bad.field) << r->body;
    }
  }
  // Oversized body.
  auto r = Post("/v1/completions", R"({"prompt":")" + std::string(2 << 20, 'a') + "\"}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(Json::parse(r->body)["error"]["param"], "body");
  alongside.join();
  EXPECT_EQ(good_status, 200);
  ASSERT_FALSE(good_body.empty());
  EXPECT_EQ(SseData(good_body).back(), "[DONE]");
  // And after them all.
  r = Post("/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(service_->InFlightRequests(), 0);
}

TEST_F(HttpApiTest, GrpcBadInputIsInvalidArgumentNamingTheField) {
  StartWorkers(1);
  struct GrpcCase {
    std::string name;
    std::function<void(pb::GenerateRequest*)> edit;
    grpc::StatusCode code;
    std::string field;
  };
  const std::vector<GrpcCase> cases = {
      {"unknown_model", [](auto* r) { r->set_model("gpt-4"); }, grpc::StatusCode::NOT_FOUND,
       "model"},
      {"no_prompt", [](auto* r) { r->clear_prompt(); }, grpc::StatusCode::INVALID_ARGUMENT,
       "prompt"},
      {"empty_prompt", [](auto* r) { r->set_text(""); }, grpc::StatusCode::INVALID_ARGUMENT,
       "prompt"},
      {"token_out_of_vocab", [](auto* r) { r->mutable_token_ids()->add_ids(999999); },
       grpc::StatusCode::INVALID_ARGUMENT, "token_ids[0]"},
      {"prompt_too_long",
       [](auto* r) {
         for (int i = 0; i < 600; ++i) r->mutable_token_ids()->add_ids(100);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "prompt"},
      {"max_tokens_zero", [](auto* r) { r->mutable_stopping()->set_max_tokens(0); },
       grpc::StatusCode::INVALID_ARGUMENT, "max_tokens"},
      {"temperature", [](auto* r) { r->mutable_sampling()->set_temperature(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "temperature"},
      {"top_p", [](auto* r) { r->mutable_sampling()->set_top_p(2); },
       grpc::StatusCode::INVALID_ARGUMENT, "top_p"},
      {"logprobs", [](auto* r) { r->mutable_sampling()->set_logprobs(21); },
       grpc::StatusCode::INVALID_ARGUMENT, "logprobs"},
      {"too_many_stops",
       [](auto* r) {
         for (int i = 0; i < 17; ++i) r->mutable_stopping()->add_stop(absl::StrCat("s", i));
       },
       grpc::StatusCode::INVALID_ARGUMENT, "stop"},
      {"empty_stop", [](auto* r) { r->mutable_stopping()->add_stop(""); },
       grpc::StatusCode::INVALID_ARGUMENT, "stop"},
      {"bad_chat_json", [](auto* r) { r->set_chat_json("{"); },
       grpc::StatusCode::INVALID_ARGUMENT, "chat_json"},
      {"request_id_too_long", [](auto* r) { r->set_request_id(std::string(257, 'r')); },
       grpc::StatusCode::INVALID_ARGUMENT, "request_id"},
      {"request_id_control_char", [](auto* r) { r->set_request_id("a\nb"); },
       grpc::StatusCode::INVALID_ARGUMENT, "request_id"},
      {"model_too_long", [](auto* r) { r->set_model(std::string(257, 'm')); },
       grpc::StatusCode::INVALID_ARGUMENT, "model"},
      {"stop_too_long",
       [](auto* r) { r->mutable_stopping()->add_stop(std::string(1025, 's')); },
       grpc::StatusCode::INVALID_ARGUMENT, "stop[0]"},
      {"too_many_stop_token_ids",
       [](auto* r) {
         for (int i = 0; i < 65; ++i) r->mutable_stopping()->add_stop_token_ids(1);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "stop_token_ids"},
      {"too_many_tools",
       [](auto* r) {
         r->set_chat_json(R"({"messages":[{"role":"user","content":"Hi"}],"tools":)" +
                          ManyTools(129) + "}");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "tools"},
      {"text_bytes_over_context", [](auto* r) { r->set_text(std::string(600000, 'a')); },
       grpc::StatusCode::INVALID_ARGUMENT, "bytes of text cannot fit in the maximum context"},
      {"token_ids_over_context",
       [](auto* r) { r->mutable_token_ids()->mutable_ids()->Resize(1000000, 5); },
       grpc::StatusCode::INVALID_ARGUMENT, "maximum context of 512"},
  };
  for (const GrpcCase& c : cases) {
    SCOPED_TRACE(c.name);
    pb::GenerateRequest req;
    req.set_text("Hi");
    c.edit(&req);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse resp;
    while (reader->Read(&resp)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), c.code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace g4
