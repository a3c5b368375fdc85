// The vocabulary as the grammar engine sees it: for every token id, the bytes it adds to the text
// (byte-fallback tokens "<0xNN>" are one raw byte; "▁" is a space), or "special" (an added
// special token such as <|tool_call>, which matches only a special-token symbol of the grammar),
// or nothing (ids without a token, or with empty text: never allowed by a grammar).
//
// The byte tokens are also laid out as a trie in depth-first order over their sorted byte
// strings: node i has the byte that leads to it, its depth, the end of its subtree and the ids
// of the tokens whose bytes end there. Walking the trie lets a mask computation share work
// between tokens with a common prefix and skip every token under a rejected prefix at once.
//
// Immutable after construction; shared by every compiled grammar of a model.
#ifndef G4SERVE_COMMON_GRAMMAR_TOKEN_VOCAB_H_
#define G4SERVE_COMMON_GRAMMAR_TOKEN_VOCAB_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/tokenizer/tokenizer.h"

namespace g4::grammar {

class TokenVocab {
 public:
  enum class Kind : uint8_t { kNone, kBytes, kSpecial };

  struct TrieNode {
    uint8_t byte = 0;        // the last byte of this node's prefix
    uint16_t depth = 0;      // prefix length (the root has 0)
    int32_t subtree_end = 0; // one past the last node of this node's subtree
    int32_t tokens_begin = 0, tokens_end = 0;  // range of trie_token_ids()
  };

  // One entry per token id; `text` is the bytes (kBytes) or the token's content (kSpecial).
  struct Token {
    Kind kind = Kind::kNone;
    std::string text;
  };

  // `mask_size`: the number of logits (the model's vocab_size); ids at or above the tokenizer's
  // vocabulary are kNone, tokenizer ids at or above mask_size are ignored.
  static absl::StatusOr<std::shared_ptr<const TokenVocab>> FromTokenizer(const Tokenizer& tokenizer,
                                                                         int32_t mask_size);
  // For tests: tokens given directly (index = id).
  static std::shared_ptr<const TokenVocab> FromTokens(std::vector<Token> tokens);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  // Words of a packed bitmask over the vocabulary: ceil(size / 32).
  int32_t bitmask_words() const { return (size() + 31) / 32; }
  Kind kind(int32_t id) const { return tokens_[id].kind; }
  const std::string& text(int32_t id) const { return tokens_[id].text; }
  // The special token whose content is `text`, if any.
  std::optional<int32_t> SpecialToken(absl::string_view text) const;
  // Contents of every special token.
  const absl::flat_hash_map<std::string, int32_t>& special_tokens() const { return special_; }

  const std::vector<TrieNode>& trie() const { return trie_; }
  absl::Span<const int32_t> trie_token_ids() const { return trie_token_ids_; }
  // The bitmask of every kBytes token (the "everything" a rejected-list mask starts from).
  const std::vector<uint32_t>& byte_token_bitmask() const { return byte_token_bitmask_; }
  int32_t num_byte_tokens() const { return num_byte_tokens_; }
  // The longest byte token (the trie's depth).
  int32_t max_token_bytes() const { return max_token_bytes_; }

 private:
  explicit TokenVocab(std::vector<Token> tokens);

  std::vector<Token> tokens_;
  absl::flat_hash_map<std::string, int32_t> special_;
  std::vector<TrieNode> trie_;  // [0] is the root
  std::vector<int32_t> trie_token_ids_;
  std::vector<uint32_t> byte_token_bitmask_;
  int32_t num_byte_tokens_ = 0;
  int32_t max_token_bytes_ = 0;
};

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_TOKEN_VOCAB_H_
