// Request parsing/validation and response building of the OpenAI-compatible HTTP layer.
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "coordinator/http/openai_request.h"
#include "coordinator/http/openai_response.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;
namespace pb = ::g4serve::v1;

TEST(ParseCompletionRequestTest, MapsFields) {
  absl::StatusOr<OpenAiRequest> r = ParseCompletionRequest(R"({
    "model": "m", "prompt": "Hello", "max_tokens": 7, "temperature": 0.5, "top_p": 0.9,
    "top_k": 40, "min_p": 0.1, "seed": 42, "stop": ["a", "b"], "presence_penalty": 0.1,
    "frequency_penalty": 0.2, "repetition_penalty": 1.1, "ignore_eos": true, "logprobs": 3,
    "stream": true, "stream_options": {"include_usage": true}, "user": "u", "n": 1,
    "echo": false})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->chat);
  EXPECT_EQ(r->model, "m");
  const pb::GenerateRequest& g = r->generate;
  EXPECT_EQ(g.text(), "Hello");
  EXPECT_EQ(g.stopping().max_tokens(), 7);
  EXPECT_FLOAT_EQ(g.sampling().temperature(), 0.5f);
  EXPECT_FLOAT_EQ(g.sampling().top_p(), 0.9f);
  EXPECT_EQ(g.sampling().top_k(), 40);
  EXPECT_FLOAT_EQ(g.sampling().min_p(), 0.1f);
  EXPECT_EQ(g.sampling().seed(), 42u);
  EXPECT_EQ(g.stopping().stop_size(), 2);
  EXPECT_TRUE(g.stopping().ignore_eos());
  EXPECT_EQ(g.sampling().logprobs(), 3);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_TRUE(r->logprobs);
}

TEST(ParseCompletionRequestTest, DefaultsAndTokenPrompts) {
  absl::StatusOr<OpenAiRequest> r = ParseCompletionRequest(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generate.token_ids().ids_size(), 3);
  EXPECT_EQ(r->generate.stopping().max_tokens(), kDefaultCompletionMaxTokens);
  EXPECT_FALSE(r->generate.sampling().has_temperature());
  r = ParseCompletionRequest(R"({"prompt": [[4, 5]], "top_k": -1})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generate.token_ids().ids_size(), 2);
  EXPECT_EQ(r->generate.sampling().top_k(), 0);
  r = ParseCompletionRequest(R"({"prompt": ["one"], "stop": "x", "max_tokens": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generate.text(), "one");
  EXPECT_EQ(r->generate.stopping().stop(0), "x");
}

TEST(ParseCompletionRequestTest, ErrorsNameTheField) {
  struct Case {
    std::string body, field;
  };
  for (const Case& c : std::vector<Case>{
           {"{", "body"},
           {R"({"prompt": "x", "bogus": 1})", "bogus"},
           {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
           {R"({"prompt": "x", "max_tokens": 1.5})", "max_tokens"},
           {R"({"prompt": "x", "n": 2})", "n"},
           {R"({"prompt": "x", "echo": true})", "echo"},
           {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
           {R"({"prompt": "x", "stream_options": {"include_usage": true}})", "stream_options"},
           {R"({"prompt": "x", "stream": true, "stream_options": {"bogus": 1}})",
            "stream_options.bogus"},
           {R"({"prompt": [1, "a"]})", "prompt[1]"},
           {R"({"prompt": ["a", "b"]})", "prompt"},
       }) {
    absl::StatusOr<OpenAiRequest> r = ParseCompletionRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorParam(r.status().message()), c.field) << r.status();
  }
}

TEST(ParseChatRequestTest, MapsToolsThinkingAndLogprobs) {
  absl::StatusOr<OpenAiRequest> r = ParseChatRequest(R"({
    "model": "m", "messages": [{"role": "user", "content": "Hi"}],
    "tools": [{"type": "function", "function": {"name": "get_weather",
               "parameters": {"type": "object", "properties": {}}}}],
    "tool_choice": "auto", "parallel_tool_calls": true,
    "chat_template_kwargs": {"enable_thinking": true},
    "logprobs": true, "top_logprobs": 2, "max_completion_tokens": 9})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->chat);
  EXPECT_EQ(r->chat_request["tools"].size(), 1u);
  EXPECT_EQ(r->chat_request["enable_thinking"], true);
  EXPECT_EQ(r->chat_request["add_generation_prompt"], true);
  EXPECT_EQ(r->generate.sampling().logprobs(), 2);
  EXPECT_EQ(r->generate.stopping().max_tokens(), 9);
  EXPECT_FALSE(r->generate.has_text());
  // tool_choice "none" leaves the tools out of the prompt.
  r = ParseChatRequest(R"({"messages": [{"role": "user", "content": "Hi"}],
    "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->chat_request.contains("tools"));
  EXPECT_FALSE(r->generate.stopping().has_max_tokens());
}

TEST(ParseChatRequestTest, StructuredOutputs) {
  const std::string m = R"("messages": [{"role": "user", "content": "Hi"}])";
  absl::StatusOr<OpenAiRequest> r =
      ParseChatRequest("{" + m + R"(, "response_format": {"type": "json_object"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->generate.structured_output().json_object());

  // The schema keeps its key order (the order properties are generated in).
  r = ParseChatRequest("{" + m + R"(, "response_format": {"type": "json_schema", "json_schema":
      {"name": "p", "strict": true, "schema": {"type": "object", "properties":
       {"z": {"type": "integer"}, "a": {"type": "string"}}, "required": ["z", "a"]}}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generate.structured_output().json_schema(),
            R"({"type":"object","properties":{"z":{"type":"integer"},"a":{"type":"string"}},)"
            R"("required":["z","a"]})");

  r = ParseChatRequest("{" + m + R"(, "response_format": {"type": "text"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->generate.has_structured_output());

  const std::string tools = R"("tools": [
      {"type": "function", "function": {"name": "f", "parameters": {"type": "object",
        "properties": {"x": {"type": "integer"}}}}},
      {"type": "function", "function": {"name": "g"}}])";
  r = ParseChatRequest("{" + m + ", " + tools + R"(, "tool_choice": "required"})");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& calls = r->generate.structured_output().tool_calls();
  ASSERT_EQ(calls.functions_size(), 2);
  EXPECT_EQ(calls.functions(0).name(), "f");
  EXPECT_EQ(calls.functions(1).parameters_json(), "");
  EXPECT_FALSE(calls.allow_multiple());
  EXPECT_TRUE(r->chat_request.contains("tools"));  // the prompt declares the tools

  r = ParseChatRequest("{" + m + ", " + tools +
                       R"(, "tool_choice": "required", "parallel_tool_calls": true})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->generate.structured_output().tool_calls().allow_multiple());

  r = ParseChatRequest("{" + m + ", " + tools +
                       R"(, "tool_choice": {"type": "function", "function": {"name": "g"}}})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->generate.structured_output().tool_calls().functions_size(), 1);
  EXPECT_EQ(r->generate.structured_output().tool_calls().functions(0).name(), "g");

  struct Case {
    std::string body, field, keyword;
  };
  const std::string bad_tools = R"("tools": [{"type": "function", "function": {"name": "f"}},
      {"type": "function", "function": {"name": "g", "parameters": {"type": "object",
        "properties": {"x": {"type": "string", "format": "date"}}}}}])";
  for (const Case& c : std::vector<Case>{
           {"{" + m + R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "x",
               "schema": {"type": "object", "properties": {"a": {"oneOf": []}}}}}})",
            "response_format.json_schema.schema", "\"oneOf\""},
           {"{" + m + R"(, "response_format": {"type": "json_schema", "json_schema":
               {"schema": {}}}})", "response_format.json_schema.name", ""},
           {"{" + m + R"(, "response_format": {"type": "json_schema", "json_schema": {"name": "x",
               "schema": {"$ref": "http://x/y"}}}})", "response_format.json_schema.schema", "$ref"},
           {"{" + m + ", " + bad_tools + R"(, "tool_choice": "required"})",
            "tools[1].function.parameters", "\"format\""},
           {"{" + m + ", " + tools +
                R"(, "tool_choice": "required", "response_format": {"type": "json_object"}})",
            "tool_choice", ""},
           {"{" + m + R"(, "tool_choice": 3})", "tool_choice", ""},
       }) {
    absl::StatusOr<OpenAiRequest> r = ParseChatRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorParam(r.status().message()), c.field) << r.status();
    EXPECT_NE(r.status().message().find(c.keyword), absl::string_view::npos) << r.status();
  }
}

TEST(ParseChatRequestTest, ErrorsNameTheField) {
  struct Case {
    std::string body, field;
  };
  const std::string m = R"("messages": [{"role": "user", "content": "Hi"}])";
  for (const Case& c : std::vector<Case>{
           {R"({"model": "m"})", "messages"},
           {R"({"messages": [{"content": "x"}]})", "messages[0].role"},
           {"{" + m + R"(, "tool_choice": "required"})", "tool_choice"},
           {"{" + m + R"(, "tool_choice": {"type": "function", "function": {"name": "f"}}})",
            "tool_choice"},
           {"{" + m + R"(, "tools": [{"type": "retrieval"}]})", "tools[0].type"},
           {"{" + m + R"(, "top_logprobs": 2})", "top_logprobs"},
           {"{" + m + R"(, "max_tokens": 3, "max_completion_tokens": 3})",
            "max_completion_tokens"},
           {"{" + m + R"(, "chat_template_kwargs": {"foo": 1}})", "chat_template_kwargs.foo"},
           {"{" + m + R"(, "function_call": "auto"})", "function_call"},
       }) {
    absl::StatusOr<OpenAiRequest> r = ParseChatRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(ErrorParam(r.status().message()), c.field) << r.status();
  }
}

TEST(ErrorBodyTest, ShapeAndStatus) {
  Json e = ErrorBody(absl::InvalidArgumentError("temperature must be >= 0, got -1"));
  EXPECT_EQ(e["error"]["message"], "temperature must be >= 0, got -1");
  EXPECT_EQ(e["error"]["type"], "invalid_request_error");
  EXPECT_EQ(e["error"]["param"], "temperature");
  EXPECT_TRUE(e["error"]["code"].is_null());
  e = ErrorBody(absl::NotFoundError("model 'x' not found"));
  EXPECT_TRUE(e["error"]["param"].is_null());
  EXPECT_EQ(e["error"]["code"], "model_not_found");
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), 504);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kCancelled), 499);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), 500);
}

pb::GenerateResponse Text(const std::string& text) {
  pb::GenerateResponse r;
  r.set_text(text);
  r.add_tokens()->set_token_id(1);
  return r;
}

pb::GenerateResponse Final(const std::string& text, pb::FinishReason reason) {
  pb::GenerateResponse r = Text(text);
  r.set_finish_reason(reason);
  r.mutable_usage()->set_prompt_tokens(10);
  r.mutable_usage()->set_completion_tokens(4);
  r.mutable_usage()->set_cached_prompt_tokens(8);
  return r;
}

ResponseOptions ChatOptions() {
  ResponseOptions o;
  o.chat = true;
  o.id = "chatcmpl-1";
  o.created = 123;
  o.model = "m";
  return o;
}

// Canned Gemma 4 output: thinking, content, a tool call.
const char kToolOutput[] =
    "<|channel>thought\nLet me check.<channel|>Checking."
    "<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>,days:3}<tool_call|>";

// An aborted request says so; it used to end with "stop", as if it had finished.
TEST(OpenAiResponderTest, AbortedRequestEndsWithAbort) {
  OpenAiResponder whole(ChatOptions());
  whole.Accumulate(Final("partial", pb::FINISH_REASON_ABORTED));
  EXPECT_EQ(whole.Final()["choices"][0]["finish_reason"], "abort");
  OpenAiResponder streamed(ChatOptions());
  std::string last_finish;
  for (const std::string& e : streamed.StreamEvents(Final("partial", pb::FINISH_REASON_ABORTED))) {
    Json chunk = Json::parse(e.substr(6));
    if (!chunk["choices"][0]["finish_reason"].is_null()) {
      last_finish = chunk["choices"][0]["finish_reason"];
    }
  }
  EXPECT_EQ(last_finish, "abort");
}

TEST(OpenAiResponderTest, ChatNonStreamingParsesReasoningAndToolCalls) {
  OpenAiResponder responder(ChatOptions());
  responder.Accumulate(Text("<|channel>thought\nLet me"));
  responder.Accumulate(Final(std::string(kToolOutput).substr(24), pb::FINISH_REASON_STOP));
  Json j = responder.Final();
  EXPECT_EQ(j["object"], "chat.completion");
  const Json& choice = j["choices"][0];
  EXPECT_EQ(choice["finish_reason"], "tool_calls");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["reasoning_content"], "Let me check.");
  EXPECT_EQ(choice["message"]["reasoning"], "Let me check.");
  EXPECT_EQ(choice["message"]["content"], "Checking.");
  ASSERT_EQ(choice["message"]["tool_calls"].size(), 1u);
  const Json& call = choice["message"]["tool_calls"][0];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"]["name"], "get_weather");
  ASSERT_TRUE(call["function"]["arguments"].is_string());
  EXPECT_EQ(Json::parse(call["function"]["arguments"].get<std::string>()),
            Json::parse(R"({"location":"Paris","days":3})"));
  EXPECT_EQ(j["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(j["usage"]["total_tokens"], 14);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 8);
}

TEST(OpenAiResponderTest, ChatStreamingDeltas) {
  ResponseOptions o = ChatOptions();
  o.include_usage = true;
  OpenAiResponder responder(o);
  std::vector<std::string> events;
  const std::string text = kToolOutput;
  for (size_t i = 0; i < text.size(); i += 7) {
    pb::GenerateResponse r = i + 7 >= text.size() ? Final(text.substr(i), pb::FINISH_REASON_STOP)
                                                  : Text(text.substr(i, 7));
    for (std::string& e : responder.StreamEvents(r)) events.push_back(e);
  }
  for (std::string& e : responder.StreamEnd()) events.push_back(e);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "data: [DONE]\n\n");
  std::string reasoning, content;
  Json tool_calls = Json::array();
  std::string finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_EQ(events[i].substr(0, 6), "data: ");
    ASSERT_EQ(events[i].substr(events[i].size() - 2), "\n\n");
    Json c = Json::parse(events[i].substr(6));
    EXPECT_EQ(c["id"], "chatcmpl-1");
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    if (i == 0) EXPECT_EQ(c["choices"][0]["delta"]["role"], "assistant");
    if (i + 2 == events.size()) {  // usage chunk
      EXPECT_TRUE(c["choices"].empty());
      EXPECT_EQ(c["usage"]["completion_tokens"], 4);
      continue;
    }
    EXPECT_TRUE(c["usage"].is_null());
    const Json& d = c["choices"][0]["delta"];
    if (d.contains("reasoning_content")) reasoning += d["reasoning_content"].get<std::string>();
    if (d.contains("content")) content += d["content"].get<std::string>();
    if (d.contains("tool_calls")) {
      for (const Json& t : d["tool_calls"]) tool_calls.push_back(t);
    }
    if (!c["choices"][0]["finish_reason"].is_null()) finish = c["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(reasoning, "Let me check.");
  EXPECT_EQ(content, "Checking.");
  ASSERT_EQ(tool_calls.size(), 1u);
  EXPECT_EQ(tool_calls[0]["index"], 0);
  EXPECT_EQ(tool_calls[0]["function"]["name"], "get_weather");
  EXPECT_EQ(finish, "tool_calls");
}

TEST(OpenAiResponderTest, CompletionWithLogprobs) {
  ResponseOptions o;
  o.id = "cmpl-1";
  o.model = "m";
  o.logprobs = true;
  OpenAiResponder responder(o);
  pb::GenerateResponse r = Final("ab", pb::FINISH_REASON_LENGTH);
  r.mutable_tokens(0)->set_logprob(-0.5f);
  pb::TokenLogprob* alt = r.mutable_tokens(0)->add_top_logprobs();
  alt->set_token_id(2);
  alt->set_token("x");
  alt->set_logprob(-1.0f);
  responder.Accumulate(r);
  Json j = responder.Final();
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "ab");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_FLOAT_EQ(j["choices"][0]["logprobs"]["token_logprobs"][0].get<float>(), -0.5f);
  EXPECT_FLOAT_EQ(j["choices"][0]["logprobs"]["top_logprobs"][0]["x"].get<float>(), -1.0f);
}

TEST(OpenAiResponderTest, StreamErrorEvent) {
  std::vector<std::string> events = OpenAiResponder::StreamError(absl::InternalError("boom"));
  ASSERT_EQ(events.size(), 2u);
  Json e = Json::parse(events[0].substr(6));
  EXPECT_EQ(e["error"]["message"], "boom");
  EXPECT_EQ(e["error"]["type"], "server_error");
  EXPECT_EQ(events[1], "data: [DONE]\n\n");
}

}  // namespace
}  // namespace g4
