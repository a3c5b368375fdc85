#include "common/chat_output/gemma_tool_args.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using Json = nlohmann::json;

Json MustParse(const std::string& gemma) {
  absl::StatusOr<Json> j = ParseGemmaToolArguments(gemma);
  EXPECT_TRUE(j.ok()) << gemma << " -> " << j.status();
  return j.ok() ? *j : Json();
}

TEST(GemmaToolArgsTest, EmptyObject) {
  EXPECT_EQ(MustParse("{}"), Json::object());
  EXPECT_EQ(MustParse("  { }\n"), Json::object());
}

TEST(GemmaToolArgsTest, TemplateStyleScalars) {
  EXPECT_EQ(MustParse("{location:<|\"|>Paris<|\"|>,days:3}"),
            Json::parse(R"({"location":"Paris","days":3})"));
  EXPECT_EQ(MustParse("{a:true,b:false,c:null,d:-2.5,e:1e3,f:0}"),
            Json::parse(R"({"a":true,"b":false,"c":null,"d":-2.5,"e":1000.0,"f":0})"));
}

TEST(GemmaToolArgsTest, PythonSpellings) {
  EXPECT_EQ(MustParse("{a:True,b:False,c:None}"), Json::parse(R"({"a":true,"b":false,"c":null})"));
}

TEST(GemmaToolArgsTest, NestedObjectsAndArrays) {
  EXPECT_EQ(MustParse("{obj:{a:<|\"|>x<|\"|>,b:{c:[]}},arr:[1,<|\"|>y<|\"|>,[true,{z:"
                      "null}]]}"),
            Json::parse(R"({"obj":{"a":"x","b":{"c":[]}},"arr":[1,"y",[true,{"z":null}]]})"));
}

TEST(GemmaToolArgsTest, StringsWithStructuralCharacters) {
  const std::string s = "a,b:c{d}e[f]g\"h\\i\nj\tk'l <tool_call|> <|tool_call> \\u0041";
  const Json j = MustParse("{s:<|\"|>" + s + "<|\"|>}");
  ASSERT_TRUE(j.contains("s"));
  EXPECT_EQ(j["s"].get<std::string>(), s);
  // The JSON text round-trips.
  const std::string text = ToolArgumentsToJsonString(j);
  EXPECT_EQ(Json::parse(text, nullptr, false), j);
}

TEST(GemmaToolArgsTest, Unicode) {
  const Json j = MustParse("{city:<|\"|>Zürich 東京 🎉<|\"|>,キー:1}");
  EXPECT_EQ(j["city"].get<std::string>(), "Zürich 東京 🎉");
  EXPECT_EQ(j["キー"].get<int>(), 1);
  EXPECT_EQ(ToolArgumentsToJsonString(j), "{\"city\":\"Zürich 東京 🎉\",\"キー\":1}");
}

TEST(GemmaToolArgsTest, EmptyString) {
  EXPECT_EQ(MustParse("{s:<|\"|><|\"|>}"), Json::parse(R"({"s":""})"));
}

TEST(GemmaToolArgsTest, QuotedKeysAndJsonStrings) {
  EXPECT_EQ(MustParse("{<|\"|>my key<|\"|>:1,\"k2\":\"v\\\"2\\n\"}"),
            Json::parse(R"({"my key":1,"k2":"v\"2\n"})"));
}

TEST(GemmaToolArgsTest, PlainJsonIsAccepted) {
  EXPECT_EQ(MustParse(R"({"a": [1, 2, {"b": "c"}], "d": null})"),
            Json::parse(R"({"a":[1,2,{"b":"c"}],"d":null})"));
}

TEST(GemmaToolArgsTest, WhitespaceAndTrailingComma) {
  EXPECT_EQ(MustParse("{ a : 1 ,\n b : [ 1 , 2 , ] , }"), Json::parse(R"({"a":1,"b":[1,2]})"));
}

TEST(GemmaToolArgsTest, LargeAndSpecialNumbers) {
  EXPECT_EQ(MustParse("{a:18446744073709551615,b:-9223372036854775808,c:1.5e-7}"),
            Json::parse(R"({"a":18446744073709551615,"b":-9223372036854775808,"c":1.5e-7})"));
}

TEST(GemmaToolArgsTest, RejectsMalformed) {
  const char* bad[] = {
      "",
      "[1,2]",
      "<|\"|>x<|\"|>",
      "{",
      "}",
      "{a}",
      "{a:}",
      "{:1}",
      "{a:1",
      "{a:1}}",
      "{a:1} trailing",
      "{a:<|\"|>unterminated}",
      "{a:\"unterminated}",
      "{a:Paris}",
      "{a:1 2}",
      "{a:1,,b:2}",
      "{a:[1,2}",
      "{a:{b:1]}",
      "{a:01}",
      "{a:-}",
      "{a:NaN}",
      "{a:inf}",
      "{a:1.}",
      "{a:\"bad \\q escape\"}",
      "{a b:1}",
      "{a:<|\"|>x<|\"|><|\"|>y<|\"|>}",
      "{,}",
  };
  for (const char* text : bad) {
    EXPECT_FALSE(ParseGemmaToolArguments(text).ok()) << text;
  }
}

TEST(GemmaToolArgsTest, DepthLimit) {
  std::string ok = "{a:";
  for (int i = 0; i < kMaxToolArgumentDepth - 1; ++i) ok += "[";
  ok += "1";
  for (int i = 0; i < kMaxToolArgumentDepth - 1; ++i) ok += "]";
  ok += "}";
  EXPECT_TRUE(ParseGemmaToolArguments(ok).ok());
  std::string deep = "{a:";
  for (int i = 0; i < 100000; ++i) deep += "[";
  EXPECT_FALSE(ParseGemmaToolArguments(deep).ok());  // no stack overflow
}

TEST(GemmaToolArgsTest, InvalidUtf8DoesNotThrowOnDump) {
  const Json j = MustParse(std::string("{s:<|\"|>\xff\xfe<|\"|>}"));
  const std::string text = ToolArgumentsToJsonString(j);
  EXPECT_FALSE(Json::parse(text, nullptr, false).is_discarded());
}

}  // namespace
}  // namespace g4
