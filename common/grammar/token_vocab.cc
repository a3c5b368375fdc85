#include "common/grammar/token_vocab.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tokenizer/decoder.h"

namespace g4::grammar {

absl::StatusOr<std::shared_ptr<const TokenVocab>> TokenVocab::FromTokenizer(
    const Tokenizer& tokenizer, int32_t mask_size) {
  if (mask_size <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("vocab size must be > 0, got ", mask_size));
  }
  if (!tokenizer.decoder().is_streamable()) {
    return absl::UnimplementedError(
        "grammar: the tokenizer's decoder is not token-by-token (structured outputs need it)");
  }
  std::vector<Token> tokens(mask_size);
  const int32_t n = std::min(mask_size, tokenizer.vocab_size());
  for (int32_t id = 0; id < n; ++id) {
    if (!tokenizer.HasToken(id)) continue;
    Token& t = tokens[id];
    if (tokenizer.IsSpecial(id)) {
      t.kind = Kind::kSpecial;
      t.text = std::string(tokenizer.IdToToken(id));
    } else if (tokenizer.IsByteToken(id)) {
      t.kind = Kind::kBytes;
      t.text = std::string(1, static_cast<char>(
                                  *tokenizer_internal::ByteFallbackValue(tokenizer.IdToToken(id))));
    } else {
      t.text = tokenizer.DecodeTokens({id});
      t.kind = t.text.empty() ? Kind::kNone : Kind::kBytes;
    }
  }
  return std::shared_ptr<const TokenVocab>(new TokenVocab(std::move(tokens)));
}

std::shared_ptr<const TokenVocab> TokenVocab::FromTokens(std::vector<Token> tokens) {
  for (Token& t : tokens) {
    if (t.kind == Kind::kBytes && t.text.empty()) t.kind = Kind::kNone;
  }
  return std::shared_ptr<const TokenVocab>(new TokenVocab(std::move(tokens)));
}

TokenVocab::TokenVocab(std::vector<Token> tokens) : tokens_(std::move(tokens)) {
  byte_token_bitmask_.assign(bitmask_words(), 0);
  std::vector<int32_t> order;
  for (int32_t id = 0; id < size(); ++id) {
    if (tokens_[id].kind == Kind::kSpecial) special_.emplace(tokens_[id].text, id);
    if (tokens_[id].kind != Kind::kBytes) continue;
    order.push_back(id);
    byte_token_bitmask_[id >> 5] |= uint32_t{1} << (id & 31);
  }
  num_byte_tokens_ = static_cast<int32_t>(order.size());
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return tokens_[a].text != tokens_[b].text ? tokens_[a].text < tokens_[b].text : a < b;
  });

  trie_.push_back(TrieNode{});
  std::vector<int32_t> path = {0};  // path[d]: the node of depth d on the current branch
  const std::string* previous = nullptr;
  for (int32_t id : order) {
    const std::string& s = tokens_[id].text;
    max_token_bytes_ = std::max(max_token_bytes_, static_cast<int32_t>(s.size()));
    size_t lcp = 0;
    if (previous != nullptr) {
      while (lcp < s.size() && lcp < previous->size() && s[lcp] == (*previous)[lcp]) ++lcp;
    }
    while (path.size() > lcp + 1) {
      trie_[path.back()].subtree_end = static_cast<int32_t>(trie_.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      TrieNode node;
      node.byte = static_cast<uint8_t>(s[d]);
      node.depth = static_cast<uint16_t>(std::min<size_t>(d + 1, 65535));
      node.tokens_begin = node.tokens_end = static_cast<int32_t>(trie_token_ids_.size());
      trie_.push_back(node);
      path.push_back(static_cast<int32_t>(trie_.size() - 1));
    }
    TrieNode& end = trie_[path.back()];
    trie_token_ids_.push_back(id);
    end.tokens_end = static_cast<int32_t>(trie_token_ids_.size());
    previous = &s;
  }
  while (!path.empty()) {
    trie_[path.back()].subtree_end = static_cast<int32_t>(trie_.size());
    path.pop_back();
  }
}

std::optional<int32_t> TokenVocab::SpecialToken(absl::string_view text) const {
  auto it = special_.find(text);
  if (it == special_.end()) return std::nullopt;
  return it->second;
}

}  // namespace g4::grammar
