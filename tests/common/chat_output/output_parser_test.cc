#include "common/chat_output/output_parser.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using Json = nlohmann::json;

ParsedOutput Expected(std::string reasoning, std::string content,
                      std::vector<ToolCall> calls = {}) {
  return ParsedOutput{std::move(reasoning), std::move(content), std::move(calls)};
}

// Parses `text` completely and also byte by byte; both must agree.
ParsedOutput Parse(const std::string& text, const OutputParserOptions& options = {}) {
  const ParsedOutput complete = ParseCompleteOutput(text, options);
  StreamingOutputParser parser(options);
  ParsedOutput streamed;
  for (char c : text) AppendDelta(parser.Feed(std::string(1, c)), &streamed);
  AppendDelta(parser.Finish(), &streamed);
  EXPECT_EQ(streamed, complete) << text;
  return complete;
}

std::string Dump(const ParsedOutput& p) {
  std::string s = "reasoning=[" + p.reasoning + "] content=[" + p.content + "] calls=";
  for (const ToolCall& c : p.tool_calls)
    s += "{" + c.id + "," + c.name + "," + c.arguments_json + "}";
  return s;
}

#define EXPECT_PARSE(text, expected)         \
  do {                                       \
    const ParsedOutput got_ = Parse(text);   \
    EXPECT_EQ(got_, expected) << Dump(got_); \
  } while (false)

TEST(OutputParserTest, PlainContent) {
  EXPECT_PARSE("", Expected("", ""));
  EXPECT_PARSE("Hello, world!", Expected("", "Hello, world!"));
  EXPECT_PARSE("a < b and c > d, x<y, <b>bold</b>, <|not a marker|>",
               Expected("", "a < b and c > d, x<y, <b>bold</b>, <|not a marker|>"));
}

TEST(OutputParserTest, ThoughtChannel) {
  EXPECT_PARSE("<|channel>thought\nLet me think.<channel|>The answer is 4.",
               Expected("Let me think.", "The answer is 4."));
  EXPECT_PARSE("<|channel>thought\n<channel|>Answer", Expected("", "Answer"));
  EXPECT_PARSE("<|channel>thought<channel|>Answer", Expected("", "Answer"));
  EXPECT_PARSE("<|channel><channel|>Answer", Expected("", "Answer"));
  EXPECT_PARSE("<|channel>thought\nthought\nx<channel|>", Expected("thought\nx", ""));
  EXPECT_PARSE("<|channel>no header<channel|>y", Expected("no header", "y"));
  EXPECT_PARSE("<|channel>thought more<channel|>y", Expected(" more", "y"));
}

TEST(OutputParserTest, ThoughtChannelLaterAndMultiple) {
  EXPECT_PARSE("Intro. <|channel>thought\nhmm<channel|>Outro.", Expected("hmm", "Intro. Outro."));
  EXPECT_PARSE("<|channel>thought\na<channel|>x<|channel>thought\nb<channel|>y",
               Expected("ab", "xy"));
}

TEST(OutputParserTest, UnterminatedThoughtIsReasoning) {
  EXPECT_PARSE("<|channel>thought\nstill thinking", Expected("still thinking", ""));
  EXPECT_PARSE("<|channel>thought\nstill <chan", Expected("still <chan", ""));
  EXPECT_PARSE("<|channel>thou", Expected("thou", ""));
  EXPECT_PARSE("<|channel>thought", Expected("", ""));
  EXPECT_PARSE("<|channel>", Expected("", ""));
}

TEST(OutputParserTest, StrayClosingMarkersAreDropped) {
  EXPECT_PARSE("a<channel|>b<tool_call|>c<tool_response|>d", Expected("", "abcd"));
}

TEST(OutputParserTest, EndMarkers) {
  EXPECT_PARSE("done<turn|>ignored", Expected("", "done"));
  EXPECT_PARSE("done<eos>ignored", Expected("", "done"));
  EXPECT_PARSE("done<|turn>user\nignored", Expected("", "done"));
  EXPECT_PARSE("<|channel>thought\nr<turn|>x", Expected("r", ""));
  EXPECT_PARSE(
      "<|tool_call>call:f{a:1}<tool_call|><|tool_response>response:f{"
      "r:1}<tool_response|>x",
      Expected("", "", {{"call_0", "f", R"({"a":1})"}}));
}

TEST(OutputParserTest, EndMarkerSetsFlag) {
  StreamingOutputParser parser;
  EXPECT_EQ(parser.Feed("a<tur").content, "a");
  EXPECT_FALSE(parser.saw_end_marker());
  EXPECT_TRUE(parser.Feed("n|>b").empty());
  EXPECT_TRUE(parser.saw_end_marker());
  EXPECT_TRUE(parser.Feed("more").empty());
  EXPECT_TRUE(parser.Finish().empty());
}

TEST(OutputParserTest, SingleToolCall) {
  EXPECT_PARSE(
      "<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>,days:3}"
      "<tool_call|>",
      Expected("", "", {{"call_0", "get_weather", R"({"days":3,"location":"Paris"})"}}));
}

TEST(OutputParserTest, ToolCallWithReasoningAndContent) {
  EXPECT_PARSE(
      "<|channel>thought\nNeed weather.<channel|>Checking. "
      "<|tool_call>call:get_weather{city:<|\"|>Zürich<|\"|>}<tool_call|>",
      Expected("Need weather.", "Checking. ", {{"call_0", "get_weather", R"({"city":"Zürich"})"}}));
}

TEST(OutputParserTest, MultipleToolCallsAndContentAround) {
  EXPECT_PARSE(
      "before <|tool_call>call:a{}<tool_call|> middle "
      "<|tool_call>call:b.v2{x:[1,{y:<|\"|>}{,:<|\"|>}]}<tool_call|> after",
      Expected("", "before  middle  after",
               {{"call_0", "a", "{}"}, {"call_1", "b.v2", R"({"x":[1,{"y":"}{,:"}]})"}}));
}

TEST(OutputParserTest, ToolCallStringContainingMarkersAndQuotes) {
  const ParsedOutput p = Parse(
      "<|tool_call>call:run{code:<|\"|>print(\"a\\nb\")\n<channel|> "
      "{x:1}<|\"|>}<tool_call|>");
  ASSERT_EQ(p.tool_calls.size(), 1u) << Dump(p);
  const Json args = Json::parse(p.tool_calls[0].arguments_json, nullptr, false);
  EXPECT_EQ(args["code"].get<std::string>(), "print(\"a\\nb\")\n<channel|> {x:1}");
  EXPECT_EQ(p.content, "");
}

TEST(OutputParserTest, ToolCallInsideReasoningClosesReasoning) {
  EXPECT_PARSE("<|channel>thought\nplan<|tool_call>call:f{}<tool_call|>ok",
               Expected("plan", "ok", {{"call_0", "f", "{}"}}));
}

TEST(OutputParserTest, WhitespaceAroundCall) {
  EXPECT_PARSE("<|tool_call> call: f { a : 1 } \n<tool_call|>",
               Expected("", "", {{"call_0", "f", R"({"a":1})"}}));
}

TEST(OutputParserTest, MalformedToolCallsFallBackToContent) {
  const char* bad[] = {
      "<|tool_call>call:f{a:}<tool_call|>",        "<|tool_call>f{a:1}<tool_call|>",
      "<|tool_call>call:{a:1}<tool_call|>",        "<|tool_call>call:f<tool_call|>",
      "<|tool_call>call:f{a:1}}<tool_call|>",      "<|tool_call>call:bad name{a:1}<tool_call|>",
      "<|tool_call>call:f{a:<|\"|>x}<tool_call|>", "<|tool_call><tool_call|>",
      "<|tool_call>call:f{a:Paris}<tool_call|>",
  };
  for (const char* text : bad) {
    EXPECT_PARSE(std::string("x ") + text + " y", Expected("", std::string("x ") + text + " y"));
  }
}

TEST(OutputParserTest, UnterminatedToolCall) {
  // Complete body, missing the closing marker (e.g. stop token stripped early):
  // still a call.
  EXPECT_PARSE("<|tool_call>call:f{a:1}", Expected("", "", {{"call_0", "f", R"({"a":1})"}}));
  EXPECT_PARSE("<|tool_call>call:f{a:1}<|tool_response>",
               Expected("", "", {{"call_0", "f", R"({"a":1})"}}));
  // Incomplete body: verbatim content.
  EXPECT_PARSE("x<|tool_call>call:f{a:<|\"|>Par", Expected("", "x<|tool_call>call:f{a:<|\"|>Par"));
  EXPECT_PARSE("x<|tool_call>call:f{a:1}<tool_c", Expected("", "x<|tool_call>call:f{a:1}<tool_c"));
  EXPECT_PARSE("x<|tool_call>", Expected("", "x<|tool_call>"));
  EXPECT_PARSE("x<|tool_call>call:f{a:1<turn|>zzz", Expected("", "x<|tool_call>call:f{a:1"));
}

TEST(OutputParserTest, MalformedCallDoesNotSwallowFollowingCall) {
  EXPECT_PARSE("<|tool_call>call:f{<tool_call|><|tool_call>call:g{}<tool_call|>",
               Expected("", "<|tool_call>call:f{<tool_call|>", {{"call_0", "g", "{}"}}));
}

TEST(OutputParserTest, PartialMarkerAtEndIsContent) {
  EXPECT_PARSE("Hello <", Expected("", "Hello <"));
  EXPECT_PARSE("Hello <|tool_ca", Expected("", "Hello <|tool_ca"));
  EXPECT_PARSE("Hello <|channel", Expected("", "Hello <|channel"));
  EXPECT_PARSE("Hello <eo", Expected("", "Hello <eo"));
}

TEST(OutputParserTest, HoldsBackOnlyPossibleMarkerPrefixes) {
  StreamingOutputParser parser;
  EXPECT_EQ(parser.Feed("Hello").content, "Hello");
  EXPECT_EQ(parser.Feed(" <").content, " ");
  EXPECT_EQ(parser.Feed("b").content, "<b");
  EXPECT_EQ(parser.Feed(" <|tool").content, " ");
  EXPECT_EQ(parser.Feed("box|>").content, "<|toolbox|>");
  EXPECT_EQ(parser.Feed("<|chan").content, "");
  OutputDelta d = parser.Feed("nel>tho");
  EXPECT_TRUE(d.empty());
  d = parser.Feed("ught\nab");
  EXPECT_EQ(d.reasoning, "ab");
  d = parser.Feed("c<channel|>x<|tool_call>call:f{a:");
  EXPECT_EQ(d.reasoning, "c");
  EXPECT_EQ(d.content, "x");
  d = parser.Feed("1}<tool_call|");
  EXPECT_TRUE(d.empty());
  d = parser.Feed(">tail");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments_json, R"({"a":1})");
  EXPECT_EQ(d.content, "tail");
  EXPECT_TRUE(parser.Finish().empty());
  EXPECT_EQ(parser.num_tool_calls(), 1);
}

TEST(OutputParserTest, HoldsBackIncompleteUtf8) {
  StreamingOutputParser parser;
  const std::string euro = "\xE2\x82\xAC";  // €
  EXPECT_EQ(parser.Feed("a\xE2").content, "a");
  EXPECT_EQ(parser.Feed("\x82").content, "");
  EXPECT_EQ(parser
                .Feed("\xAC"
                      "b")
                .content,
            euro + "b");
  EXPECT_EQ(parser.Feed("\xF0\x9F").content, "");
  EXPECT_EQ(parser.Finish().content,
            "\xF0\x9F");  // flushed at the end, never dropped
}

TEST(OutputParserTest, InvalidUtf8PassesThrough) {
  EXPECT_PARSE("a\xff\xfe b \x80", Expected("", "a\xff\xfe b \x80"));
}

TEST(OutputParserTest, StartsInReasoning) {
  OutputParserOptions options;
  options.start = OutputStart::kReasoning;
  EXPECT_EQ(Parse("thinking...<channel|>answer", options), Expected("thinking...", "answer"));
  EXPECT_EQ(Parse("thought\nx<channel|>", options), Expected("thought\nx", ""));
  options.start = OutputStart::kReasoningHeader;
  EXPECT_EQ(Parse("thought\nx<channel|>y", options), Expected("x", "y"));
  EXPECT_EQ(Parse("x<channel|>y", options), Expected("x", "y"));
}

TEST(OutputParserTest, OutputStartForPrompt) {
  EXPECT_EQ(OutputStartForPrompt("<|turn>user\nhi<turn|>\n<|turn>model\n"), OutputStart::kContent);
  EXPECT_EQ(OutputStartForPrompt("<|turn>model\n<|channel>thought\n<channel|>"),
            OutputStart::kContent);
  EXPECT_EQ(OutputStartForPrompt("<|turn>model\n<|channel>thought\n"), OutputStart::kReasoning);
  EXPECT_EQ(OutputStartForPrompt("<|turn>model\n<|channel>thought"), OutputStart::kReasoning);
  EXPECT_EQ(OutputStartForPrompt("<|turn>model\n<|channel>"), OutputStart::kReasoningHeader);
  EXPECT_EQ(OutputStartForPrompt("<|turn>model\n<|channel>tho"), OutputStart::kReasoningHeader);
  EXPECT_EQ(OutputStartForPrompt("<|channel>thought\na<channel|>x<|channel>thought\nb"),
            OutputStart::kReasoning);
}

TEST(OutputParserTest, EmptyThoughtBlockFromThinkingOffPrompt) {
  // 31B/26B with thinking off: the prompt already holds
  // `<|channel>thought\n<channel|>`, so the output is plain content (and a
  // model that still opens a channel is parsed normally).
  const OutputStart start = OutputStartForPrompt(
      "<bos><|turn>user\nHello!<turn|>\n<|turn>model\n<|"
      "channel>thought\n<channel|>");
  OutputParserOptions options;
  options.start = start;
  EXPECT_EQ(Parse("Hi there!", options), Expected("", "Hi there!"));
}

TEST(OutputParserTest, CustomIds) {
  OutputParserOptions options;
  options.tool_call_id = [](int i) { return "call_req7_" + std::to_string(i); };
  const ParsedOutput p =
      Parse("<|tool_call>call:f{}<tool_call|><|tool_call>call:g{}<tool_call|>", options);
  ASSERT_EQ(p.tool_calls.size(), 2u);
  EXPECT_EQ(p.tool_calls[0].id, "call_req7_0");
  EXPECT_EQ(p.tool_calls[1].id, "call_req7_1");
}

TEST(OutputParserTest, FinishIsIdempotentAndFeedAfterFinishIgnored) {
  StreamingOutputParser parser;
  EXPECT_EQ(parser.Feed("ab<").content, "ab");
  EXPECT_EQ(parser.Finish().content, "<");
  EXPECT_TRUE(parser.Finish().empty());
  EXPECT_TRUE(parser.Feed("more").empty());
}

TEST(OutputParserTest, LargeToolCallBodyIsLinear) {
  std::string text = "<|tool_call>call:f{s:<|\"|>";
  std::string payload(2'000'000, 'x');
  text += payload + "<|\"|>}<tool_call|>";
  StreamingOutputParser parser;
  ParsedOutput out;
  for (size_t i = 0; i < text.size(); i += 7) AppendDelta(parser.Feed(text.substr(i, 7)), &out);
  AppendDelta(parser.Finish(), &out);
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments_json.size(), payload.size() + 8);
}

}  // namespace
}  // namespace g4
