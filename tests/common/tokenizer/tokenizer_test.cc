#include "common/tokenizer/tokenizer.h"

#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/tokenizer/tokenizer_json.h"
#include "common/tokenizer/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/tokenizer/tokenizer_test_util.h"

namespace g4 {
namespace {

using ::g4::testing::Gemma3;
using ::g4::testing::Ids;
using ::g4::testing::ReadJsonl;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Gemma3Tokenizer, ReferenceVectors) {
  const Tokenizer& tok = Gemma3();
  const auto cases = ReadJsonl("tests/data/tokenizer/vectors.jsonl");
  ASSERT_EQ(cases.size(), 79u);
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(absl::StrCat("vectors.jsonl line ", i + 1, ": ", absl::CEscape(text)));
    EXPECT_EQ(tok.Encode(text), Ids(c["ids"]));
    EXPECT_EQ(tok.Encode(text, /*add_special_tokens=*/true), Ids(c["ids_with_bos"]));
    auto decoded = tok.Decode(Ids(c["ids"]));
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, c["decoded"].get<std::string>());
  }
}

// EncodeAtMost gives Encode's ids when they fit and nothing when they do not, for every
// reference text, exactly at the boundary.
TEST(Gemma3Tokenizer, EncodeAtMostAgreesWithEncode) {
  const Tokenizer& tok = Gemma3();
  for (const auto& c : ReadJsonl("tests/data/tokenizer/vectors.jsonl")) {
    const std::string text = c["text"].get<std::string>();
    SCOPED_TRACE(absl::CEscape(text));
    for (bool bos : {false, true}) {
      const std::vector<int32_t> ids = tok.Encode(text, bos);
      EXPECT_EQ(tok.EncodeAtMost(text, ids.size(), bos), ids);
      if (!ids.empty()) EXPECT_EQ(tok.EncodeAtMost(text, ids.size() - 1, bos), std::nullopt);
    }
  }
}

// A text far over the limit is refused from its size (every token covers at most 93 bytes),
// not tokenized: 40 MB against a 512-token context used to take 11 s and 1.5 GB.
TEST(Gemma3Tokenizer, HugeTextOverTheLimitIsRefusedWithoutTokenizing) {
  const Tokenizer& tok = Gemma3();
  EXPECT_EQ(tok.max_token_bytes(), 93);
  EXPECT_EQ(tok.max_input_bytes_per_token(), 93);
  std::string huge;
  huge.reserve(40 << 20);
  while (huge.size() < (40u << 20)) huge += "Lorem ipsum dolor sit amet, consectetur. ";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(tok.EncodeAtMost(huge, 511), std::nullopt);
  // Generous (sanitizer builds, a loaded machine): tokenizing this text takes 11 s here.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

TEST(Gemma3Tokenizer, HfTokenizersVectors) {
  const Tokenizer& tok = Gemma3();
  const auto cases = ReadJsonl("tests/data/tokenizer/gemma3_hf_vectors.jsonl");
  ASSERT_GT(cases.size(), 1000u);
  int encode = 0, raw = 0, decode = 0, failures = 0;
  for (size_t i = 0; i < cases.size() && !(HasFailure() && ++failures > 20); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(absl::StrCat("gemma3_hf_vectors.jsonl line ", i + 1));
    if (c.contains("text")) {
      ++encode;
      const std::string text = c["text"].get<std::string>();
      EXPECT_EQ(tok.Encode(text), Ids(c["ids"])) << absl::CEscape(text.substr(0, 200));
      EXPECT_EQ(tok.Encode(text, true), Ids(c["ids_with_bos"]));
      auto decoded = tok.Decode(Ids(c["ids"]));
      ASSERT_TRUE(decoded.ok()) << decoded.status();
      EXPECT_EQ(*decoded, c["decoded"].get<std::string>());
    } else if (c.contains("bytes_hex")) {
      ++raw;
      const std::string bytes = absl::HexStringToBytes(c["bytes_hex"].get<std::string>());
      EXPECT_EQ(tok.Encode(bytes), Ids(c["ids"])) << c["bytes_hex"];
    } else {
      ++decode;
      const auto ids = Ids(c["decode_ids"]);
      auto d = tok.Decode(ids);
      auto ds = tok.Decode(ids, /*skip_special_tokens=*/true);
      ASSERT_TRUE(d.ok() && ds.ok());
      EXPECT_EQ(*d, c["decoded"].get<std::string>());
      EXPECT_EQ(*ds, c["decoded_skip"].get<std::string>());
    }
  }
  EXPECT_GT(encode, 1000);
  EXPECT_GT(raw, 100);
  EXPECT_GT(decode, 200);
}

TEST(Gemma3Tokenizer, SpecialTokensAndVocab) {
  const Tokenizer& tok = Gemma3();
  EXPECT_EQ(tok.vocab_size(), 262145);  // 262144 BPE tokens + <image_soft_token>
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 3);
  EXPECT_EQ(tok.TokenToId("<start_of_turn>"), 105);
  EXPECT_EQ(tok.TokenToId("<end_of_turn>"), 106);
  EXPECT_EQ(tok.TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tok.IdToToken(107), "\n");
  EXPECT_EQ(tok.IdToToken(-1), "");
  EXPECT_EQ(tok.IdToToken(262144), "<image_soft_token>");
  EXPECT_EQ(tok.IdToToken(262145), "");
  EXPECT_TRUE(tok.IsSpecial(2));
  EXPECT_TRUE(tok.IsSpecial(106));
  EXPECT_FALSE(tok.IsSpecial(4));  // <mask> is an added token but not special
  EXPECT_FALSE(tok.IsSpecial(9259));
  EXPECT_FALSE(tok.IsSpecial(-5));
  EXPECT_THAT(tok.Encode("<start_of_turn>user", true), ElementsAre(2, 105, 2364));
}

TEST(Gemma3Tokenizer, SkipSpecialTokens) {
  const Tokenizer& tok = Gemma3();
  const auto ids = tok.Encode("<start_of_turn>user\nHi<end_of_turn><mask>", true);
  EXPECT_EQ(*tok.Decode(ids), "<bos><start_of_turn>user\nHi<end_of_turn><mask>");
  EXPECT_EQ(*tok.Decode(ids, true), "user\nHi<mask>");
}

TEST(Gemma3Tokenizer, InvalidUtf8BecomesReplacementCharacters) {
  const Tokenizer& tok = Gemma3();
  // Each maximal ill-formed subpart is one U+FFFD, like Python's errors="replace".
  EXPECT_EQ(tok.Encode("a\xff" "b"), tok.Encode("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(tok.Encode("\xe2\x82"), tok.Encode("\xEF\xBF\xBD"));
  EXPECT_EQ(tok.Encode("\xed\xa0\x80"),  // a UTF-8-encoded surrogate: three bad bytes
            tok.Encode("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
  EXPECT_EQ(tok.Encode("<bos>\xc0"), tok.Encode("<bos>\xEF\xBF\xBD"));
  EXPECT_EQ(tokenizer_internal::SanitizeUtf8("ok\xf0\x9f\x98!"), "ok\xEF\xBF\xBD!");
  EXPECT_FALSE(tokenizer_internal::IsValidUtf8("\xf4\x90\x80\x80"));
  EXPECT_TRUE(tokenizer_internal::IsValidUtf8("\xf4\x8f\xbf\xbf"));
}

TEST(Gemma3Tokenizer, DecodeRejectsOutOfRangeIds) {
  const Tokenizer& tok = Gemma3();
  for (int32_t bad : {-1, 262145, 1 << 30}) {
    auto r = tok.Decode({9259, bad});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(absl::StrCat("token id ", bad, " at position 1")));
  }
  EXPECT_EQ(*tok.Decode({}), "");
}

TEST(Gemma3Tokenizer, ByteFallbackDecode) {
  const Tokenizer& tok = Gemma3();
  const int32_t e2 = *tok.TokenToId("<0xE2>"), x82 = *tok.TokenToId("<0x82>"),
                xac = *tok.TokenToId("<0xAC>");
  EXPECT_EQ(*tok.Decode({e2, x82, xac}), "€");
  // An incomplete group becomes one U+FFFD per byte, as in HF.
  EXPECT_EQ(*tok.Decode({e2, x82, 9259}), "\xEF\xBF\xBD\xEF\xBF\xBDHello");
  // Skipped special tokens vanish before decoding, so the byte groups join.
  EXPECT_EQ(*tok.Decode({e2, 2, x82, xac}, true), "€");
}

// Loading the uncompressed tokenizer.json (what a checkpoint ships) gives the same vocabulary
// as the .xz copy. Its speed is measured by g4-bench-tokenizer, never by a timed test.
TEST(Gemma3Tokenizer, LoadsUncompressedJson) {
  auto text = tokenizer_internal::ReadMaybeXzFile(testing::kGemma3Tokenizer);
  ASSERT_TRUE(text.ok());
  auto tok = Tokenizer::LoadFromJson(*text);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), Gemma3().vocab_size());
  EXPECT_EQ(*(*tok)->Decode({9259}), *Gemma3().Decode({9259}));
}

}  // namespace
}  // namespace g4
