// GrammarCompiler's cache (hits, LRU eviction by count and by mask memory, errors not cached)
// and the matcher's bound on stacks for ambiguous grammars.
#include "common/grammar/compiler.h"

#include "gtest/gtest.h"
#include "tests/common/grammar/grammar_test_util.h"

namespace g4::grammar {
namespace {

using OJson = nlohmann::ordered_json;

StructuredOutputSpec Spec(const std::string& schema) {
  return testing::SchemaSpec(OJson::parse(schema));
}

TEST(GrammarCompilerTest, CachesBySpecWithLruEviction) {
  GrammarCompiler compiler(testing::SmallVocab(), /*max_entries=*/2);
  auto a = compiler.Compile(Spec(R"({"type": "integer"})"));
  ASSERT_TRUE(a.ok());
  auto a2 = compiler.Compile(Spec(R"({"type": "integer"})"));
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a->get(), a2->get());
  // Key order is part of the spec (it is the property order).
  auto b = compiler.Compile(Spec(R"({"properties": {"x": {}, "y": {}}})"));
  auto c = compiler.Compile(Spec(R"({"properties": {"y": {}, "x": {}}})"));
  ASSERT_TRUE(b.ok() && c.ok());
  EXPECT_NE(b->get(), c->get());
  EXPECT_EQ(compiler.stats().entries, 2);  // integer was least recently used: evicted
  auto a3 = compiler.Compile(Spec(R"({"type": "integer"})"));
  ASSERT_TRUE(a3.ok());
  EXPECT_NE(a3->get(), a->get());
  EXPECT_EQ(compiler.stats().hits, 1);
  EXPECT_EQ(compiler.stats().misses, 4);
  // Errors are returned, not cached.
  EXPECT_FALSE(compiler.Compile(Spec(R"({"pattern": "x"})")).ok());
  EXPECT_FALSE(compiler.Compile(Spec(R"({"pattern": "x"})")).ok());
  EXPECT_EQ(compiler.stats().entries, 2);
}

TEST(GrammarCompilerTest, EvictsByMaskMemory) {
  GrammarCompiler compiler(testing::SmallVocab(), 64, /*max_mask_bytes=*/1);
  auto a = compiler.Compile(Spec(R"({"type": "string"})"));
  ASSERT_TRUE(a.ok());
  GrammarMatcher m(*a, testing::DefaultEnds());
  std::vector<uint32_t> bits((*a)->vocab().bitmask_words());
  m.FillNextTokenBitmask(absl::MakeSpan(bits));  // caches a node mask
  ASSERT_GT((*a)->cached_bytes(), 1);
  auto b = compiler.Compile(Spec(R"({"type": "boolean"})"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(compiler.stats().entries, 1);  // the string grammar went over the budget
  // The evicted grammar still works for its matcher.
  EXPECT_TRUE(m.AcceptBytes("\"ok\""));
  EXPECT_TRUE(m.CanEnd());
}

TEST(GrammarMatcherTest, AmbiguousGrammarsKeepABoundedNumberOfStacks) {
  OJson any = OJson::array();
  for (int i = 0; i < 400; ++i) {
    any.push_back({{"type", "string"}, {"maxLength", 3 + (i % 7)}, {"title", std::to_string(i)}});
  }
  auto g = testing::CompileOrDie(testing::SchemaSpec({{"anyOf", any}}), testing::SmallVocab());
  ASSERT_NE(g, nullptr);
  GrammarMatcher m(g, testing::DefaultEnds());
  ASSERT_TRUE(m.AcceptBytes("\"ab"));
  EXPECT_LE(m.num_stacks(), static_cast<int>(GrammarMatcher::kMaxStacks));
  std::vector<uint32_t> bits(g->vocab().bitmask_words());
  m.FillNextTokenBitmask(absl::MakeSpan(bits));
  EXPECT_FALSE(testing::AllowedIds(bits).empty());
  EXPECT_TRUE(m.AcceptBytes("c\""));
  EXPECT_TRUE(m.CanEnd());
}

}  // namespace
}  // namespace g4::grammar
