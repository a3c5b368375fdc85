// The token-level mask agrees with the byte-level automaton on every token of the real
// 262144-token Gemma tokenizer (byte-fallback, multi-byte and special tokens): at sampled states
// of random generations, FillNextTokenBitmask equals trying AcceptToken on each of the 262144
// tokens. Also: every generated output parses and validates.
#include <random>

#include "common/grammar/json_schema.h"
#include "common/grammar/matcher.h"
#include "common/grammar/token_vocab.h"
#include "gtest/gtest.h"
#include "tests/common/grammar/grammar_test_util.h"
#include "tests/common/tokenizer/tokenizer_test_util.h"

namespace g4::grammar {
namespace {

using OJson = nlohmann::ordered_json;

std::shared_ptr<const TokenVocab> RealVocab() {
  static const auto* vocab = [] {
    auto v = TokenVocab::FromTokenizer(g4::testing::Gemma3(), 262144);
    EXPECT_TRUE(v.ok()) << v.status();
    return new std::shared_ptr<const TokenVocab>(*v);
  }();
  return *vocab;
}

TEST(RealVocabMaskTest, VocabularyShape) {
  auto v = RealVocab();
  EXPECT_EQ(v->size(), 262144);
  EXPECT_EQ(v->bitmask_words(), 8192);
  // Byte fallback: <0x7B> is the single byte '{'; "▁" decodes to a space.
  const auto id = g4::testing::Gemma3().TokenToId("<0x7B>");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(v->kind(*id), TokenVocab::Kind::kBytes);
  EXPECT_EQ(v->text(*id), "{");
  EXPECT_EQ(v->kind(1), TokenVocab::Kind::kSpecial);  // <eos>
  EXPECT_GT(v->num_byte_tokens(), 260000);
}

void CheckRandomWalks(const StructuredOutputSpec& spec, uint32_t seed, int walks) {
  auto g = testing::CompileOrDie(spec, RealVocab());
  ASSERT_NE(g, nullptr);
  std::mt19937 rng(seed);
  const std::vector<int32_t> ends = {1, 106};
  std::vector<uint32_t> bits(g->vocab().bitmask_words());
  int checked = 0;
  for (int walk = 0; walk < walks; ++walk) {
    GrammarMatcher m(g, ends);
    std::string text;
    for (int step = 0; step < 200; ++step) {
      m.FillNextTokenBitmask(absl::MakeSpan(bits));
      if (step == 0 || step == 2 || step % 7 == 3) {
        ASSERT_EQ(bits, testing::BruteForceMask(m)) << "state after: " << text;
        ++checked;
      }
      std::vector<int32_t> allowed = testing::AllowedIds(bits);
      ASSERT_FALSE(allowed.empty()) << text;
      const bool can_end = m.CanEnd();
      int32_t pick = allowed[std::uniform_int_distribution<size_t>(0, allowed.size() - 1)(rng)];
      if (can_end) pick = 1;
      ASSERT_TRUE(m.AcceptToken(pick));
      if (m.IsTerminated()) break;
      text += g->vocab().text(pick);
    }
    if (spec.kind == StructuredOutputSpec::Kind::kJsonSchema && m.IsTerminated()) {
      nlohmann::json value = nlohmann::json::parse(text, nullptr, false);
      ASSERT_FALSE(value.is_discarded()) << text;
      auto schema = JsonSchema::Parse(spec.schema);
      ASSERT_TRUE(schema.ok());
      EXPECT_TRUE(schema->Validate(value).ok()) << schema->Validate(value) << "\n" << text;
    }
  }
  EXPECT_GT(checked, 0);
}

TEST(RealVocabMaskTest, FlatObject) {
  CheckRandomWalks(testing::SchemaSpec(OJson::parse(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 12}, "n": {"type": "integer", "minimum": -3,
      "maximum": 700}, "x": {"type": "number"}, "e": {"enum": ["a<b", 2, null]}},
      "required": ["name", "n"]})")), 1, 2);
}

TEST(RealVocabMaskTest, NestedArraysAnyOfAndRef) {
  CheckRandomWalks(testing::SchemaSpec(OJson::parse(R"({"$defs": {"p": {"type": "object",
      "properties": {"k": {"type": "array", "items": {"anyOf": [{"type": "boolean"},
      {"$ref": "#/$defs/p"}]}, "maxItems": 2}}}}, "type": "array", "items": {"$ref": "#/$defs/p"},
      "maxItems": 3})")), 2, 2);
}

TEST(RealVocabMaskTest, ToolCallsWithGemmaStrings) {
  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kToolCalls;
  spec.allow_multiple_calls = true;
  spec.tools = {{"get_weather", OJson::parse(R"({"type": "object", "properties": {
                    "city": {"type": "string", "maxLength": 8}, "days": {"type": "integer"}},
                    "required": ["city"]})")},
                {"search", nullptr}};
  CheckRandomWalks(spec, 3, 2);
}

}  // namespace
}  // namespace g4::grammar
