// Small synthetic tokenizer.json files: merge formats, pre-tokenizer behaviours, added-token
// flags, unk handling and every load error.
#include <string>

#include "absl/strings/str_replace.h"
#include "common/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

nlohmann::json Base() {
  return nlohmann::json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [
      {"id": 0, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": true},
      {"id": 1, "content": "<x>", "single_word": false, "lstrip": false, "rstrip": false,
       "normalized": false, "special": false}
    ],
    "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
    "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious",
                      "invert": false},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<bos>": {"id": "<bos>", "ids": [0], "tokens": ["<bos>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
      "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
      "vocab": {"<bos>": 0, "<x>": 1, "<unk>": 2, "a": 3, "b": 4, "ab": 5, "▁": 6, "▁ab": 7,
                "<0xC3>": 8, "<0xA9>": 9, "c": 10, "bc": 11, "abc": 12},
      "merges": [["a", "b"], ["▁", "ab"], ["b", "c"], ["ab", "c"]]}
  })");
}

std::unique_ptr<Tokenizer> Load(const nlohmann::json& j) {
  auto t = Tokenizer::LoadFromJson(j.dump());
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(*t) : nullptr;
}

absl::Status LoadError(const nlohmann::json& j) {
  auto t = Tokenizer::LoadFromJson(j.dump());
  return t.ok() ? absl::OkStatus() : t.status();
}

TEST(TokenizerComponents, BasicEncodeDecode) {
  auto tok = Load(Base());
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(tok->Encode("ab ab"), ElementsAre(5, 7));
  EXPECT_THAT(tok->Encode("ab ab", true), ElementsAre(0, 5, 7));
  // "é" is not in the vocabulary: byte fallback. "d" has no byte token: <unk>, fused.
  EXPECT_THAT(tok->Encode("é"), ElementsAre(8, 9));
  EXPECT_THAT(tok->Encode("dd"), ElementsAre(2));
  EXPECT_THAT(tok->Encode("a<x>b<bos>"), ElementsAre(3, 1, 4, 0));
  // Rank order: "a b" (rank 0) beats "b c" (rank 2), then "ab c".
  EXPECT_THAT(tok->Encode("abc"), ElementsAre(12));
  EXPECT_EQ(*tok->Decode({0, 5, 7, 8, 9}), "<bos>ab abé");
  EXPECT_EQ(*tok->Decode({0, 5, 7}, true), "ab ab");
}

// The byte bound per token holds only where no token can stand for an unbounded run of input.
TEST(TokenizerComponents, InputBytesPerTokenBound) {
  auto j = Base();
  // "d" has no byte token and unknowns fuse: "dddd..." is one token.
  EXPECT_EQ(Load(j)->max_input_bytes_per_token(), 0);
  EXPECT_EQ(Load(j)->EncodeAtMost(std::string(1000, 'd'), 1), std::vector<int32_t>{2});
  j["model"]["fuse_unk"] = false;
  auto unfused = Load(j);
  EXPECT_EQ(unfused->max_token_bytes(), 6);  // "<0xC3>"
  EXPECT_EQ(unfused->max_input_bytes_per_token(), 6);
  // A normalizer that can shrink text (two bytes into one) removes the bound.
  j["normalizer"] = nlohmann::json::parse(
      R"({"type": "Replace", "pattern": {"String": "ab"}, "content": "c"})");
  EXPECT_EQ(Load(j)->max_input_bytes_per_token(), 0);
}

TEST(TokenizerComponents, EncodeAtMostStopsOverTheLimit) {
  auto tok = Load(Base());
  EXPECT_EQ(tok->EncodeAtMost("ab ab", 2), std::vector<int32_t>({5, 7}));
  EXPECT_EQ(tok->EncodeAtMost("ab ab", 1), std::nullopt);
  // The post-processor's ids count.
  EXPECT_EQ(tok->EncodeAtMost("ab ab", 3, true), std::vector<int32_t>({0, 5, 7}));
  EXPECT_EQ(tok->EncodeAtMost("ab ab", 2, true), std::nullopt);
  // Added tokens count as they are matched.
  EXPECT_EQ(tok->EncodeAtMost("<x><x><x>", 2), std::nullopt);
  EXPECT_EQ(tok->EncodeAtMost("<x><x><x>", 3), std::vector<int32_t>({1, 1, 1}));
}

TEST(TokenizerComponents, LegacyStringMerges) {
  auto j = Base();
  j["model"]["merges"] = {"a b", "▁ ab", "b c", "ab c"};
  auto tok = Load(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(tok->Encode("ab ab abc"), ElementsAre(5, 7, 7, 10));
}

TEST(TokenizerComponents, NoFuseUnk) {
  auto j = Base();
  j["model"]["fuse_unk"] = false;
  auto tok = Load(j);
  EXPECT_THAT(tok->Encode("dd"), ElementsAre(2, 2));
}

TEST(TokenizerComponents, SplitBehaviours) {
  auto j = Base();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"]["pattern"]["String"] = "b";
  // With "b" split off, "ab" can no longer merge.
  j["pre_tokenizer"]["behavior"] = "Isolated";
  EXPECT_THAT(Load(j)->Encode("abc"), ElementsAre(3, 4, 10));
  j["pre_tokenizer"]["behavior"] = "MergedWithPrevious";
  EXPECT_THAT(Load(j)->Encode("abc"), ElementsAre(5, 10));
  j["pre_tokenizer"]["behavior"] = "MergedWithNext";
  EXPECT_THAT(Load(j)->Encode("abc"), ElementsAre(3, 11));
  j["pre_tokenizer"]["behavior"] = "Removed";
  EXPECT_THAT(Load(j)->Encode("abc"), ElementsAre(3, 10));
  j["pre_tokenizer"]["behavior"] = "Contiguous";
  EXPECT_THAT(Load(j)->Encode("abbc"), ElementsAre(3, 4, 4, 10));
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", nlohmann::json::array()}};
  EXPECT_THAT(Load(j)->Encode("abc"), ElementsAre(12));
}

TEST(TokenizerComponents, AddedTokenFlags) {
  auto j = Base();
  j["added_tokens"][1]["lstrip"] = true;
  j["added_tokens"][1]["rstrip"] = true;
  EXPECT_THAT(Load(j)->Encode("a  <x>  b"), ElementsAre(3, 1, 4));
  j = Base();
  j["added_tokens"][1]["single_word"] = true;
  EXPECT_THAT(Load(j)->Encode("a<x>"), ElementsAre(3, 2));  // not a separate word: plain text
  // Leftmost-longest: "<x>" inside "<x>>" still matches; longest of overlapping candidates wins.
  j = Base();
  j["added_tokens"].push_back({{"id", 13}, {"content", "<x>>"}, {"single_word", false},
                               {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                               {"special", false}});
  EXPECT_THAT(Load(j)->Encode("<x>>"), ElementsAre(13));
  EXPECT_THAT(Load(j)->Encode("<x><x>>"), ElementsAre(1, 13));
}

TEST(TokenizerComponents, NormalizedAddedToken) {
  auto j = Base();
  j["added_tokens"].push_back({{"id", 13}, {"content", "a b"}, {"single_word", false},
                               {"lstrip", false}, {"rstrip", false}, {"normalized", true},
                               {"special", false}});
  EXPECT_THAT(Load(j)->Encode("ca bc"), ElementsAre(10, 13, 10));
}

TEST(TokenizerComponents, RejectsUnknownComponents) {
  struct Case {
    const char* field;
    nlohmann::json value;
    const char* message;
  } cases[] = {
      {"normalizer", {{"type", "NFKC"}}, "unsupported normalizer type \"NFKC\""},
      {"pre_tokenizer", {{"type", "ByteLevel"}}, "unsupported pre_tokenizer type \"ByteLevel\""},
      {"decoder", {{"type", "WordPiece"}}, "unsupported decoder type \"WordPiece\""},
      {"post_processor", {{"type", "BertProcessing"}}, "unsupported post_processor type"},
      {"normalizer", {{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "x"}},
       "Regex patterns are not supported"},
  };
  for (const auto& c : cases) {
    auto j = Base();
    j[c.field] = c.value;
    absl::Status s = LoadError(j);
    EXPECT_EQ(s.code(), c.field == std::string("normalizer") && c.value.contains("pattern")
                            ? absl::StatusCode::kUnimplemented
                            : absl::StatusCode::kInvalidArgument)
        << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
  }
  auto j = Base();
  j["model"]["type"] = "Unigram";
  EXPECT_THAT(LoadError(j).message(), HasSubstr("unsupported model type \"Unigram\""));
}

TEST(TokenizerComponents, RejectsBadFiles) {
  EXPECT_THAT(Tokenizer::LoadFromJson("{").status().message(), HasSubstr("invalid JSON"));
  EXPECT_THAT(Tokenizer::LoadFromJson("[]").status().message(), HasSubstr("object"));
  EXPECT_EQ(Tokenizer::LoadFromFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
  auto j = Base();
  j["model"]["merges"] = nlohmann::json::array({nlohmann::json::array({"a", "zz"})});
  EXPECT_THAT(LoadError(j).message(), HasSubstr("\"zz\" is not in the vocabulary"));
  j = Base();
  j["model"]["merges"] = {"a b c"};
  EXPECT_THAT(LoadError(j).message(), HasSubstr("model.merges[0]"));
  j = Base();
  j["model"]["vocab"]["x"] = "1";
  EXPECT_THAT(LoadError(j).message(), HasSubstr("must be integers"));
  j = Base();
  j["model"]["vocab"]["dup"] = 3;
  EXPECT_THAT(LoadError(j).message(), HasSubstr("used twice"));
  j = Base();
  j["model"].erase("vocab");
  EXPECT_THAT(LoadError(j).message(), HasSubstr("model.vocab"));
  j = Base();
  j["model"]["dropout"] = 0.1;
  EXPECT_EQ(LoadError(j).code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace g4
