#include "common/chat_template/chat_template.h"

#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/json_depth.h"
#include "nlohmann/json.hpp"
#include "tests/testing/run_with_stack.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::ordered_json;

constexpr char kDir[] = "tests/data/chat_templates/";
const char* const kTemplates[] = {"gemma-4", "gemma-4-31B-it-interleaved"};

ChatTemplate LoadTemplate(const std::string& name) {
  auto t = ChatTemplate::LoadFile(std::string(kDir) + name + ".jinja");
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

// Renders every case of a case file; returns the number of cases that matched.
int CheckCaseFile(const std::string& tmpl, const std::string& file) {
  ChatTemplate t = LoadTemplate(tmpl);
  std::ifstream in(std::string(kDir) + file);
  EXPECT_TRUE(in) << file << " (run from the repository root)";
  std::string line;
  int passed = 0, total = 0;
  while (std::getline(in, line)) {
    Json c = Json::parse(line);
    ++total;
    SCOPED_TRACE(file + ": " + c["name"].get<std::string>());
    Json request = c;
    request.erase("name");
    request.erase("rendered");
    auto r = t.Render(request);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) continue;
    EXPECT_EQ(*r, c["rendered"].get<std::string>());
    if (*r == c["rendered"].get<std::string>()) ++passed;
  }
  EXPECT_GT(total, 0);
  EXPECT_EQ(passed, total);
  return passed;
}

TEST(ChatTemplateCasesTest, ShippedCasesGemma4) {
  EXPECT_EQ(CheckCaseFile("gemma-4", "cases-gemma-4.jsonl"), 14);
}

TEST(ChatTemplateCasesTest, ShippedCasesInterleaved) {
  EXPECT_EQ(CheckCaseFile("gemma-4-31B-it-interleaved", "cases-gemma-4-31B-it-interleaved.jsonl"),
            14);
}

TEST(ChatTemplateCasesTest, GeneratedExtraCases) {
  for (const char* t : kTemplates) {
    CheckCaseFile(t, std::string("cases-extra-") + t + ".jsonl");
  }
}

std::string MustRender(const ChatTemplate& t, const Json& req) {
  auto r = t.Render(req);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : "";
}

// OpenAI tool results are folded into the preceding assistant turn's tool_responses.
TEST(ChatTemplateMappingTest, OpenAiToolMessagesBecomeToolResponses) {
  const Json openai = Json::parse(R"({
    "messages": [
      {"role": "user", "content": "Weather in Paris and Rome?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "c2", "type": "function",
         "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "{\"temperature\": 18}"},
      {"role": "tool", "tool_call_id": "c2", "content": "sunny"}
    ]})");
  const Json native = Json::parse(R"({
    "messages": [
      {"role": "user", "content": "Weather in Paris and Rome?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"id": "c2", "type": "function",
         "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}],
       "tool_responses": [
        {"name": "get_weather", "response": {"temperature": 18}},
        {"name": "get_weather", "response": "sunny"}]}
    ]})");
  for (const char* name : kTemplates) {
    ChatTemplate t = LoadTemplate(name);
    std::string a = MustRender(t, openai);
    EXPECT_EQ(a, MustRender(t, native));
    EXPECT_THAT(a, HasSubstr("<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|>"
                             "<|tool_call>call:get_weather{city:<|\"|>Rome<|\"|>}<tool_call|>"
                             "<|tool_response>response:get_weather{temperature:18}<tool_response|>"
                             "<|tool_response>response:get_weather{value:<|\"|>sunny<|\"|>}"
                             "<tool_response|>"));
    // Inside the same model turn: no <turn|> and no new <|turn>model before the thought block.
    EXPECT_TRUE(a.size() > 0 && a.find("<turn|>", a.find("<|tool_call>")) == std::string::npos);
  }
}

TEST(ChatTemplateMappingTest, ToolNameFromMessageOrSingleCall) {
  ChatTemplate t = LoadTemplate("gemma-4");
  Json req = Json::parse(R"({"messages": [
      {"role": "user", "content": "t?"},
      {"role": "assistant", "tool_calls": [{"type": "function",
        "function": {"name": "get_time", "arguments": {}}}]},
      {"role": "tool", "content": [{"type": "text", "text": "12:00Z"}]}]})");
  EXPECT_THAT(MustRender(t, req), HasSubstr("response:get_time{value:<|\"|>12:00Z<|\"|>}"));
  req["messages"][2]["name"] = "clock";
  EXPECT_THAT(MustRender(t, req), HasSubstr("response:clock{value:"));
}

TEST(ChatTemplateMappingTest, ReasoningFieldIsReasoningContent) {
  ChatTemplate t = LoadTemplate("gemma-4-31B-it-interleaved");
  Json req = Json::parse(R"({"messages": [
      {"role": "user", "content": "q"},
      {"role": "assistant", "reasoning": "let me look", "tool_calls": [{"type": "function",
        "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "content": "1"}]})");
  Json native = req;
  native["messages"][1].erase("reasoning");
  native["messages"][1]["reasoning_content"] = "let me look";
  std::string a = MustRender(t, req);
  EXPECT_THAT(a, HasSubstr("<|channel>thought\nlet me look<channel|><|tool_call>call:f{}"));
  native["messages"][1]["tool_responses"] = Json::parse(R"([{"name": "f", "response": "1"}])");
  native["messages"].erase(2);
  EXPECT_EQ(a, MustRender(t, native));
}

TEST(ChatTemplateMappingTest, DeveloperPartsAndMediaParts) {
  ChatTemplate t = LoadTemplate("gemma-4");
  Json req = Json::parse(R"({"messages": [
      {"role": "developer", "content": [{"type": "text", "text": " Be "}, {"type": "text", "text": "brief. "}]},
      {"role": "user", "content": [{"type": "text", "text": "look"},
                                   {"type": "image_url", "image_url": {"url": "http://x"}}]}],
      "add_generation_prompt": false})");
  EXPECT_EQ(MustRender(t, req),
            "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nlook\n\n<|image|>\n\n<turn|>\n");
}

TEST(ChatTemplateMappingTest, DefaultsAndOptions) {
  ChatTemplate t = LoadTemplate("gemma-4");
  Json req = Json::parse(R"({"messages": [{"role": "user", "content": "hi"}],
                             "model": "ignored", "temperature": 0.5})");
  EXPECT_EQ(MustRender(t, req), "<bos><|turn>user\nhi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  req["enable_thinking"] = true;
  EXPECT_EQ(MustRender(t, req), "<bos><|turn>system\n<|think|><turn|>\n<|turn>user\nhi<turn|>\n<|turn>model\n");
  // nlohmann::json overload.
  nlohmann::json plain = nlohmann::json::parse(R"({"messages": [{"role": "user", "content": "hi"}],
                                                   "add_generation_prompt": false})");
  auto r = t.Render(plain);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "<bos><|turn>user\nhi<turn|>\n");
}

void ExpectInvalid(const ChatTemplate& t, const std::string& request, const std::string& field) {
  auto r = t.Render(Json::parse(request));
  ASSERT_FALSE(r.ok()) << request;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr(field)) << request;
}

TEST(ChatTemplateValidationTest, RejectsBadRequests) {
  ChatTemplate t = LoadTemplate("gemma-4");
  ExpectInvalid(t, R"({})", "messages");
  ExpectInvalid(t, R"({"messages": {}})", "messages");
  ExpectInvalid(t, R"({"messages": []})", "messages");
  ExpectInvalid(t, R"({"messages": ["hi"]})", "messages[0]");
  ExpectInvalid(t, R"({"messages": [{"content": "x"}]})", "messages[0].role");
  ExpectInvalid(t, R"({"messages": [{"role": "wizard", "content": "x"}]})", "messages[0].role");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": 5}]})", "messages[0].content");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": [{"type": "pdf"}]}]})",
                "messages[0].content[0].type");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": [{"type": "text"}]}]})",
                "messages[0].content[0].text");
  ExpectInvalid(t, R"({"messages": [{"role": "system", "content": [{"type": "image"}]}]})",
                "messages[0].content[0].type");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": "x"}, {"role": "tool", "content": "r"}]})",
                "messages[1]");
  ExpectInvalid(t, R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}]})",
                "messages[0].tool_calls[0].function.arguments");
  ExpectInvalid(t, R"({"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]})",
                "messages[0].tool_calls[0].function.name");
  ExpectInvalid(t, R"({"messages": [{"role": "assistant", "content": "x", "reasoning": 3}]})",
                "messages[0].reasoning");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": "x"}], "tools": {}})", "tools");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})",
                "tools[0]");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": "x"}], "enable_thinking": "yes"})",
                "enable_thinking");
  ExpectInvalid(t, R"({"messages": [{"role": "user", "content": "x"}], "add_generation_prompt": 1})",
                "add_generation_prompt");
}

TEST(ChatTemplateErrorTest, TemplateErrors) {
  auto bad = ChatTemplate::Load("{% if messages %}\n{{ messages[0] \n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("template line"));
  auto missing = ChatTemplate::LoadFile("tests/data/chat_templates/does-not-exist.jinja");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);

  auto t = ChatTemplate::Load(
      "{% for m in messages %}{% if m.role == 'tool' %}\n"
      "{{ raise_exception('tool role not supported') }}{% endif %}{% endfor %}{{ undefined_macro() }}");
  ASSERT_TRUE(t.ok());
  auto r = t->Render(Json::parse(R"({"messages": [{"role": "user", "content": "x"}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("undefined_macro"));
  r = t->Render(Json::parse(R"({"messages": [{"role": "tool", "tool_responses": []}]})"));
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("tool role not supported"));
  EXPECT_THAT(r.status().message(), HasSubstr("template line 2"));
}

// JSON nested past kMaxJsonDepth is refused before anything recurses over it, wherever it hides
// in the request; up to the limit, the templates' recursive schema/argument macros render on a
// 1 MiB stack.
std::string Deep(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

Json ToolCallTurn(const Json& arguments, const Json& tool_content) {
  Json req = Json::parse(R"({"messages": [
      {"role": "user", "content": "t?"},
      {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "ok"}]})");
  req["messages"][1]["tool_calls"][0]["function"]["arguments"] = arguments;
  req["messages"][2]["content"] = tool_content;
  return req;
}

TEST(ChatTemplateDepthTest, DeepJsonStringsInsideTheRequestAreRefused) {
  g4::testing::RunWithStack(1 << 20, [] {
    ChatTemplate t = LoadTemplate("gemma-4");
    const std::string deep_args = "{\"a\":" + Deep(100000) + "}";
    auto r = t.Render(ToolCallTurn(deep_args, "ok"));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(),
                HasSubstr("messages[1].tool_calls[0].function.arguments: JSON nested deeper "
                          "than 64 levels"));
    r = t.Render(ToolCallTurn(Json::object(), Deep(100000)));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(),
                HasSubstr("messages[2].content: JSON nested deeper than 64 levels"));
  });
}

TEST(ChatTemplateDepthTest, DeepRequestIsRefused) {
  g4::testing::RunWithStack(1 << 20, [] {
    ChatTemplate t = LoadTemplate("gemma-4");
    Json req = Json::parse(R"({"messages": [{"role": "user", "content": "x"}]})");
    req["messages"][0]["content"] = Json::parse(Deep(100000));
    auto r = t.Render(req);
    EXPECT_THAT(r.status().message(), HasSubstr("request: JSON nested deeper than 64 levels"));
    // The nlohmann::json overload checks before its (recursive) conversion.
    nlohmann::json plain = nlohmann::json::parse(R"({"messages": [{"role": "user"}]})");
    plain["messages"][0]["content"] = nlohmann::json::parse(Deep(100000));
    r = t.Render(plain);
    EXPECT_THAT(r.status().message(), HasSubstr("request: JSON nested deeper than 64 levels"));
  });
}

TEST(ChatTemplateDepthTest, ToolSchemasAndArgumentsUpToTheLimitRender) {
  g4::testing::RunWithStack(1 << 20, [] {
    for (const char* name : kTemplates) {
      ChatTemplate t = LoadTemplate(name);
      // A JSON Schema nested as deep as the request may be: request → tools → [0] → function →
      // parameters → (properties → a)* → the innermost object.
      Json schema = Json{{"type", "string"}};
      Json args = Json::object();
      int depth = 4;  // {request, tools, [0], function}
      while (depth + 3 <= kMaxJsonDepth) {
        schema = Json{{"type", "object"}, {"properties", Json{{"a", schema}}}};
        args = Json{{"a", args}};
        depth += 2;
      }
      Json req = Json::parse(R"({"messages": [{"role": "user", "content": "x"}]})");
      req["tools"] = Json::array({Json{{"type", "function"},
                                       {"function", Json{{"name", "f"}, {"parameters", schema}}}}});
      ASSERT_LE(JsonValueDepth(req), kMaxJsonDepth);
      auto r = t.Render(req);
      ASSERT_TRUE(r.ok()) << name << ": " << r.status();
      EXPECT_THAT(*r, HasSubstr("declaration:f"));
      r = t.Render(ToolCallTurn(args.dump(), "ok"));
      ASSERT_TRUE(r.ok()) << name << ": " << r.status();
      EXPECT_THAT(*r, HasSubstr("call:f{a:{a:"));
    }
  });
}

}  // namespace
}  // namespace g4
