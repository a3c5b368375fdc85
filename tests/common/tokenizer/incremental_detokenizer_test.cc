#include "common/tokenizer/incremental_detokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/tokenizer/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/tokenizer/tokenizer_test_util.h"

namespace g4 {
namespace {

using ::g4::testing::Gemma3;
using tokenizer_internal::IsValidUtf8;

// Feeds `ids` one at a time; checks every piece is valid UTF-8; returns the concatenation.
std::string Stream(IncrementalDetokenizer& d, const std::vector<int32_t>& ids) {
  std::string all;
  for (int32_t id : ids) {
    auto piece = d.Feed(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok()) continue;
    EXPECT_TRUE(IsValidUtf8(*piece)) << "id " << id;
    all += *piece;
  }
  std::string tail = d.Flush();
  EXPECT_TRUE(IsValidUtf8(tail));
  return all + tail;
}

TEST(IncrementalDetokenizer, RandomSequencesMatchDecode) {
  const Tokenizer& tok = Gemma3();
  std::vector<int32_t> byte_ids;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    byte_ids.push_back(*tok.TokenToId(name));
  }
  std::mt19937 rng(1234);
  for (bool skip : {false, true}) {
    auto d = IncrementalDetokenizer::Create(&tok, skip);
    ASSERT_TRUE(d.ok());
    for (int iter = 0; iter < 2000; ++iter) {
      std::vector<int32_t> ids(rng() % 40);
      for (int32_t& id : ids) {
        const unsigned r = rng() % 10;
        if (r < 4) {
          id = byte_ids[rng() % 256];
        } else if (r < 5) {
          id = static_cast<int32_t>(rng() % 110);  // specials, newlines, unused
        } else {
          id = static_cast<int32_t>(rng() % tok.vocab_size());
        }
      }
      // UTF-8 of real characters as byte tokens, sometimes truncated.
      if (iter % 3 == 0) {
        for (unsigned char c : std::string("h\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80")) {
          if (rng() % 8) ids.push_back(byte_ids[c]);
        }
      }
      const std::string expected = *tok.Decode(ids, skip);
      ASSERT_EQ(Stream(**d, ids), expected) << "iteration " << iter;
    }
  }
}

TEST(IncrementalDetokenizer, EncodedTextRoundTrips) {
  const Tokenizer& tok = Gemma3();
  const std::string text =
      "<start_of_turn>user\nПривет, 世界! 👨‍👩‍👧‍👦 ᚠᛇᚻ 𝔘𝔫𝔦 \x01\t code(x) { return 0; }<end_of_turn>\n";
  const auto ids = tok.Encode(text);
  auto d = IncrementalDetokenizer::Create(&tok);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Stream(**d, ids), text);
}

TEST(IncrementalDetokenizer, HoldsByteRunsUntilComplete) {
  const Tokenizer& tok = Gemma3();
  auto d = *IncrementalDetokenizer::Create(&tok);
  const int32_t e2 = *tok.TokenToId("<0xE2>"), x82 = *tok.TokenToId("<0x82>"),
                xac = *tok.TokenToId("<0xAC>");
  EXPECT_EQ(*d->Feed(9259), "Hello");
  EXPECT_EQ(*d->Feed(e2), "");
  EXPECT_EQ(*d->Feed(x82), "");
  EXPECT_EQ(*d->Feed(xac), "");
  EXPECT_EQ(*d->Feed(1902), "€ world");
  EXPECT_EQ(*d->Feed(e2), "");
  EXPECT_EQ(d->Flush(), "\xEF\xBF\xBD");  // incomplete at the end: U+FFFD, as Decode gives
  EXPECT_EQ(d->Flush(), "");
}

TEST(IncrementalDetokenizer, RejectsBadIdsWithoutLosingState) {
  const Tokenizer& tok = Gemma3();
  auto d = *IncrementalDetokenizer::Create(&tok);
  EXPECT_EQ(*d->Feed(*tok.TokenToId("<0xC3>")), "");
  auto bad = d->Feed(tok.vocab_size());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), ::testing::HasSubstr("262145"));
  EXPECT_FALSE(d->Feed(-3).ok());
  EXPECT_EQ(*d->Feed(*tok.TokenToId("<0xA9>")), "");
  EXPECT_EQ(d->Flush(), "é");
}

TEST(IncrementalDetokenizer, NullTokenizer) {
  EXPECT_FALSE(IncrementalDetokenizer::Create(nullptr).ok());
}

}  // namespace
}  // namespace g4
