// A small vocabulary shaped like Gemma's (specials, the 256 byte tokens, multi-byte tokens) for
// the grammar tests and the grammar fuzz target (no test framework here).
#ifndef G4SERVE_TESTS_COMMON_GRAMMAR_SMALL_VOCAB_H_
#define G4SERVE_TESTS_COMMON_GRAMMAR_SMALL_VOCAB_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/grammar/token_vocab.h"

namespace g4::grammar::testing {

inline constexpr int32_t kEos = 1;
inline constexpr int32_t kEndOfTurn = 3;

// ids 0-7 specials (<pad> <eos> <|tool_call> <turn|> <tool_call|> <|"|> <|tool_response>
// <unused>), 8-263 the 256 single bytes, then multi-byte tokens.
inline std::shared_ptr<const TokenVocab> SmallVocab() {
  using K = TokenVocab::Kind;
  std::vector<TokenVocab::Token> t;
  for (const char* s : {"<pad>", "<eos>", "<|tool_call>", "<turn|>", "<tool_call|>", "<|\"|>",
                        "<|tool_response>", "<unused>"}) {
    t.push_back({K::kSpecial, s});
  }
  for (int b = 0; b < 256; ++b) t.push_back({K::kBytes, std::string(1, static_cast<char>(b))});
  for (const char* s :
       {"{\"", "\":", "\": ", "\", \"", ", \"", "\"}", "}", "{}", "[]", "true", "false", "null",
        "name", "age", "ab", "abc", "<|", "<t", "<a", "\\u", "\\u00", "\\n", "12", "0.5", "-1",
        "e+1", "call", "call:", "get_weather", "city", ":<", "\xC3\xA9", "\xE2\x82", "\xAC",
        "\xF0\x9F\x98\x80", "  ", "\n", "\"", "\",", "\"]", "]}", "}]", "Paris", "\", ", "1, 2",
        "call:get_weather{"}) {
    t.push_back({K::kBytes, s});
  }
  t.push_back({K::kBytes, ""});  // empty: never allowed
  return TokenVocab::FromTokens(std::move(t));
}

inline std::vector<int32_t> DefaultEnds() { return {kEos, kEndOfTurn}; }

}  // namespace g4::grammar::testing

#endif  // G4SERVE_TESTS_COMMON_GRAMMAR_SMALL_VOCAB_H_
