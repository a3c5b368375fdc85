// GrammarMatcher on a small vocabulary: accepted and rejected strings for each construct, masks
// equal to a brute-force AcceptToken over every token, end tokens, special-token symbols.
#include "common/grammar/matcher.h"

#include <random>

#include "gtest/gtest.h"
#include "tests/common/grammar/grammar_test_util.h"

namespace g4::grammar {
namespace {

using ::g4::grammar::testing::BruteForceMask;
using ::g4::grammar::testing::CompileOrDie;
using ::g4::grammar::testing::DefaultEnds;
using ::g4::grammar::testing::SchemaSpec;
using ::g4::grammar::testing::SmallVocab;
using Json = nlohmann::json;

// Whole string accepted and complete.
bool Matches(const std::shared_ptr<const CompiledGrammar>& g, const std::string& text) {
  GrammarMatcher m(g, DefaultEnds());
  return m.AcceptBytes(text) && m.CanEnd();
}

std::shared_ptr<const CompiledGrammar> Schema(const nlohmann::ordered_json& schema) {
  return CompileOrDie(SchemaSpec(schema), SmallVocab());
}

TEST(MatcherTest, Scalars) {
  auto g = Schema({{"type", "integer"}});
  EXPECT_TRUE(Matches(g, "0"));
  EXPECT_TRUE(Matches(g, "-12"));
  EXPECT_TRUE(Matches(g, "999999999999999"));
  EXPECT_FALSE(Matches(g, "1000000000000000"));  // 16 digits
  EXPECT_FALSE(Matches(g, "01"));
  EXPECT_FALSE(Matches(g, "-0"));
  EXPECT_FALSE(Matches(g, "1.5"));
  EXPECT_FALSE(Matches(g, " 1"));

  g = Schema({{"type", "number"}});
  for (const char* ok : {"0", "-0", "1.5", "-2.25e+10", "3E5", "0.000", "7e-01"}) {
    EXPECT_TRUE(Matches(g, ok)) << ok;
  }
  for (const char* bad : {"1.", ".5", "1e", "1e123", "+1", "00"}) {
    EXPECT_FALSE(Matches(g, bad)) << bad;
  }

  g = Schema({{"type", "boolean"}});
  EXPECT_TRUE(Matches(g, "true"));
  EXPECT_TRUE(Matches(g, "false"));
  EXPECT_FALSE(Matches(g, "True"));
  g = Schema({{"type", "null"}});
  EXPECT_TRUE(Matches(g, "null"));
}

TEST(MatcherTest, IntegerBounds) {
  auto g = Schema({{"type", "integer"}, {"minimum", -15}, {"maximum", 120}});
  for (int v = -30; v <= 200; ++v) {
    EXPECT_EQ(Matches(g, std::to_string(v)), v >= -15 && v <= 120) << v;
  }
  g = Schema({{"type", "integer"}, {"exclusiveMinimum", 5}, {"exclusiveMaximum", 9.5}});
  for (int v = 0; v <= 12; ++v) EXPECT_EQ(Matches(g, std::to_string(v)), v >= 6 && v <= 9) << v;
}

TEST(MatcherTest, Strings) {
  auto g = Schema({{"type", "string"}});
  for (const char* ok : {"\"\"", "\"abc\"", "\"a\\\"b\"", "\"\\u00e9\\n\"", "\"\xC3\xA9\"",
                         "\"\xF0\x9F\x98\x80\"", "\"a<b\"", "\"<\"", "\"\\u003ceos>\""}) {
    EXPECT_TRUE(Matches(g, ok)) << ok;
  }
  for (const char* bad : {"\"abc", "\"a\"b\"", "\"\n\"", "\"\\x\"", "\"\\ud800\"",
                          "\"\xC3\"", "\"\xC0\x80\"", "\"\xED\xA0\x80\"", "\"<|x\"",
                          "\"<eos>\"", "\"<turn|>\"", "\"<channel|>\"", "'a'"}) {
    EXPECT_FALSE(Matches(g, bad)) << bad;
  }
  g = Schema({{"type", "string"}, {"minLength", 2}, {"maxLength", 3}});
  EXPECT_FALSE(Matches(g, "\"a\""));
  EXPECT_TRUE(Matches(g, "\"ab\""));
  EXPECT_TRUE(Matches(g, "\"a\xC3\xA9\\n\""));  // 3 code points
  EXPECT_FALSE(Matches(g, "\"abcd\""));
}

TEST(MatcherTest, ObjectsInSchemaOrderWithOptionalProperties) {
  auto g = Schema({{"type", "object"},
                   {"properties", {{"a", {{"type", "integer"}}}, {"b", {{"type", "boolean"}}},
                                   {"c", {{"type", "null"}}}}},
                   {"required", {"b"}}});
  EXPECT_TRUE(Matches(g, "{\"b\": true}"));
  EXPECT_TRUE(Matches(g, "{\"a\": 1, \"b\": false}"));
  EXPECT_TRUE(Matches(g, "{\"a\": 1, \"b\": false, \"c\": null}"));
  EXPECT_TRUE(Matches(g, "{\"b\": true, \"c\": null}"));
  EXPECT_FALSE(Matches(g, "{}"));
  EXPECT_FALSE(Matches(g, "{\"b\": true, \"a\": 1}"));
  EXPECT_FALSE(Matches(g, "{\"b\":true}"));
  EXPECT_FALSE(Matches(g, "{\"b\": true,\"c\": null}"));
  EXPECT_FALSE(Matches(g, "{\"b\": true, \"d\": 1}"));
}

TEST(MatcherTest, ArraysWithBounds) {
  auto g = Schema({{"type", "array"}, {"items", {{"type", "integer"}}}, {"minItems", 1},
                   {"maxItems", 3}});
  EXPECT_FALSE(Matches(g, "[]"));
  EXPECT_TRUE(Matches(g, "[1]"));
  EXPECT_TRUE(Matches(g, "[1, 2, 3]"));
  EXPECT_FALSE(Matches(g, "[1, 2, 3, 4]"));
  EXPECT_FALSE(Matches(g, "[1,2]"));
  g = Schema({{"type", "array"}, {"minItems", 2}});
  EXPECT_FALSE(Matches(g, "[1]"));
  EXPECT_TRUE(Matches(g, "[1, \"a\", {\"k\": [null, true]}, []]"));
}

TEST(MatcherTest, AnyOfEnumConstAndRecursiveRef) {
  auto g = Schema({{"anyOf", {{{"type", "integer"}}, {{"enum", {"x", Json::array({1, 2})}}}}}});
  EXPECT_TRUE(Matches(g, "5"));
  EXPECT_TRUE(Matches(g, "\"x\""));
  EXPECT_TRUE(Matches(g, "[1, 2]"));
  EXPECT_FALSE(Matches(g, "\"y\""));

  // A tree: {"v": int, "kids": [tree, ...]}.
  const nlohmann::ordered_json tree = nlohmann::ordered_json::parse(R"({
    "$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
      "required": ["v"], "additionalProperties": false}},
    "$ref": "#/$defs/node"})");
  g = Schema(tree);
  EXPECT_TRUE(Matches(g, "{\"v\": 1, \"kids\": [{\"v\": 2}, {\"v\": 3, \"kids\": [{\"v\": 4}]}]}"));
  EXPECT_FALSE(Matches(g, "{\"kids\": [], \"v\": 1}"));  // schema order: v, kids
  EXPECT_TRUE(Matches(g, "{\"v\": 1}"));
  EXPECT_TRUE(Matches(g, "{\"v\": 3, \"kids\": [{\"v\": 4, \"kids\": []}]}"));
  EXPECT_FALSE(Matches(g, "{\"v\": 3, \"kids\": [{}]}"));
}

TEST(MatcherTest, JsonObjectMode) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kJsonObject;
  auto g = CompileOrDie(spec, SmallVocab());
  EXPECT_TRUE(Matches(g, "{}"));
  EXPECT_TRUE(Matches(g, "{\"a\": [1, {\"b\": null}], \"c\": \"d\"}"));
  EXPECT_FALSE(Matches(g, "[]"));
  EXPECT_FALSE(Matches(g, "{\"a\": 1,}"));
}

TEST(MatcherTest, EndTokensOnlyWhenComplete) {
  auto g = Schema({{"type", "boolean"}});
  GrammarMatcher m(g, DefaultEnds());
  EXPECT_FALSE(m.CanEnd());
  EXPECT_FALSE(m.AcceptToken(testing::kEos));
  ASSERT_TRUE(m.AcceptBytes("tru"));
  EXPECT_FALSE(m.AcceptToken(testing::kEos));
  ASSERT_TRUE(m.AcceptBytes("e"));
  std::vector<uint32_t> bits(m.compiled().vocab().bitmask_words());
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  EXPECT_EQ(testing::AllowedIds(bits), (std::vector<int32_t>{testing::kEos, testing::kEndOfTurn}));
  EXPECT_TRUE(m.AcceptToken(testing::kEndOfTurn));
  EXPECT_TRUE(m.IsTerminated());
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  EXPECT_TRUE(testing::AllowedIds(bits).empty());
  EXPECT_FALSE(m.AcceptToken(testing::kEos));
}

TEST(MatcherTest, RejectedTokenLeavesStateUnchanged) {
  auto g = Schema({{"type", "array"}, {"items", {{"type", "integer"}}}});
  GrammarMatcher m(g, DefaultEnds());
  ASSERT_TRUE(m.AcceptBytes("[1"));
  EXPECT_FALSE(m.AcceptBytes(", x"));
  EXPECT_TRUE(m.AcceptBytes(", 2]"));
  EXPECT_TRUE(m.CanEnd());
}

TEST(MatcherTest, ToolCallsUseSpecialTokens) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kToolCalls;
  spec.tools = {{"get_weather", nlohmann::ordered_json::parse(R"({"type": "object", "properties":
                    {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city"]})")},
                {"noop", nullptr}};
  auto g = CompileOrDie(spec, SmallVocab());
  ASSERT_NE(g, nullptr);
  const int32_t open = 2, close = 4, quote = 5;
  GrammarMatcher m(g, DefaultEnds());
  // The spelled-out marker is not the special token.
  EXPECT_FALSE(GrammarMatcher(m).AcceptBytes("<|tool_call>"));
  ASSERT_TRUE(m.AcceptToken(open));
  ASSERT_TRUE(m.AcceptBytes("call:get_weather{city:"));
  ASSERT_TRUE(m.AcceptToken(quote));
  ASSERT_TRUE(m.AcceptBytes("Paris \"ok\" \\"));
  ASSERT_TRUE(m.AcceptToken(quote));
  ASSERT_TRUE(m.AcceptBytes(",days:3}"));
  EXPECT_FALSE(m.CanEnd());
  ASSERT_TRUE(m.AcceptToken(close));
  EXPECT_TRUE(m.CanEnd());
  EXPECT_FALSE(GrammarMatcher(m).AcceptToken(open));  // one call only
  EXPECT_TRUE(m.AcceptToken(testing::kEos));

  GrammarMatcher other(g, DefaultEnds());
  ASSERT_TRUE(other.AcceptToken(open));
  ASSERT_TRUE(other.AcceptBytes("call:noop{"));
  EXPECT_TRUE(other.AcceptBytes("x_1:[1,true,{y:null}]}"));
  EXPECT_FALSE(GrammarMatcher(other).AcceptBytes("z"));
}

TEST(MatcherTest, MasksEqualBruteForceOnRandomWalks) {
  using OJson = nlohmann::ordered_json;
  const std::vector<OJson> schemas = {
      OJson::parse(R"({"type": "object", "properties": {"name": {"type": "string",
          "maxLength": 6}, "age": {"type": "integer", "minimum": 0, "maximum": 150},
          "tags": {"type": "array", "items": {"enum": ["a", "b<t"]}, "maxItems": 3}},
          "required": ["name"]})"),
      OJson::parse(R"({"anyOf": [{"type": "object", "properties": {"a": {"type": "string",
          "maxLength": 3}}, "required": ["a"]}, {"type": "object", "properties": {"b":
          {"type": "number"}}}, {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}]})"),
      OJson::parse(R"({"type": "string", "maxLength": 5})"),
      // Long enough that positions share masks (the longest test token has 17 bytes).
      OJson::parse(R"({"type": "array", "items": {"type": "string", "minLength": 22,
          "maxLength": 45}, "maxItems": 2})"),
  };
  std::mt19937 rng(7);
  for (const OJson& schema : schemas) {
    auto g = Schema(schema);
    for (int run = 0; run < 6; ++run) {
      testing::Generation out = testing::Generate(g, rng, 120, 0.5, /*check_masks=*/true);
      if (out.completed) {
        Json parsed = Json::parse(out.text, nullptr, false);
        EXPECT_FALSE(parsed.is_discarded()) << out.text;
      }
    }
  }
}

TEST(MatcherTest, BoundedStringPositionsShareMasks) {
  auto g = Schema({{"type", "string"}, {"maxLength", 300}});
  GrammarMatcher m(g, DefaultEnds());
  std::vector<uint32_t> bits(g->vocab().bitmask_words());
  ASSERT_TRUE(m.AcceptBytes("\""));
  for (int k = 0; k < 250; ++k) {
    m.FillNextTokenBitmask(absl::MakeSpan(bits));
    ASSERT_TRUE(m.AcceptBytes("a"));
  }
  // 250 positions, but only those within one token of a bound differ.
  EXPECT_LT(g->cached_nodes(), 10);
  for (int k = 0; k < 50; ++k) {
    m.FillNextTokenBitmask(absl::MakeSpan(bits));
    EXPECT_EQ(bits, testing::BruteForceMask(m)) << k;
    ASSERT_TRUE(m.AcceptBytes("b"));
  }
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  EXPECT_EQ(bits, testing::BruteForceMask(m));
  EXPECT_FALSE(GrammarMatcher(m).AcceptBytes("c"));
  EXPECT_TRUE(m.AcceptBytes("\""));
  EXPECT_TRUE(m.CanEnd());
}

TEST(MatcherTest, StatsAndCaching) {
  auto g = Schema({{"type", "string"}});
  GrammarMatcher m(g, DefaultEnds());
  std::vector<uint32_t> bits(g->vocab().bitmask_words());
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  ASSERT_TRUE(m.AcceptBytes("\"ab"));
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  const int64_t cached = g->cached_nodes();
  EXPECT_GE(cached, 2);
  ASSERT_TRUE(m.AcceptBytes("cd"));
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  EXPECT_EQ(g->cached_nodes(), cached);  // the string body node is reused
  EXPECT_GT(g->cached_bytes(), 0);
}

}  // namespace
}  // namespace g4::grammar
