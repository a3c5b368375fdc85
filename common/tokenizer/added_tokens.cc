#include "common/tokenizer/added_tokens.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>

#include "common/tokenizer/utf8.h"

namespace g4::tokenizer_internal {
namespace {

// HF `is_word_character`-style helpers (alphanumeric or '_'), approximated for non-ASCII as
// "not whitespace and not ASCII punctuation".
bool IsWordChar(uint32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) || cp == '_';
  return !IsUnicodeWhitespace(cp);
}

// Last code point of a valid UTF-8 string (non-empty).
uint32_t LastCodePoint(absl::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  return DecodeCodePoint(s.data() + i, s.size() - i);
}

uint32_t FirstCodePoint(absl::string_view s) {
  const size_t len = ValidSequenceLength(s, 0);
  return DecodeCodePoint(s.data(), len == 0 ? 1 : len);
}

}  // namespace

void AddedTokenMatcher::Build(const std::vector<const AddedToken*>& tokens,
                              const std::vector<std::string>& patterns) {
  // Build with maps, then flatten into sorted edge lists.
  struct TmpNode {
    std::map<uint8_t, int> children;
    int32_t token = -1;
  };
  std::vector<TmpNode> tmp(1);
  tokens_.clear();
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int node = 0;
    for (char c : p) {
      const auto b = static_cast<uint8_t>(c);
      auto it = tmp[node].children.find(b);
      if (it == tmp[node].children.end()) {
        tmp.emplace_back();
        it = tmp[node].children.emplace(b, static_cast<int>(tmp.size() - 1)).first;
      }
      node = it->second;
    }
    if (tmp[node].token < 0) {  // first registration of a duplicate pattern wins
      tmp[node].token = static_cast<int32_t>(tokens_.size());
      tokens_.push_back(*tokens[t]);
    }
    first_byte_[static_cast<uint8_t>(p[0])] = true;
  }
  nodes_.assign(tmp.size(), Node{});
  edges_.clear();
  for (size_t i = 0; i < tmp.size(); ++i) {
    nodes_[i].first_edge = static_cast<uint32_t>(edges_.size());
    nodes_[i].num_edges = static_cast<uint32_t>(tmp[i].children.size());
    nodes_[i].token = tmp[i].token;
    for (const auto& [b, child] : tmp[i].children) {
      edges_.push_back({b, static_cast<uint32_t>(child)});
    }
  }
}

size_t AddedTokenMatcher::LongestMatch(absl::string_view text, size_t pos, int32_t* token) const {
  uint32_t node = 0;
  size_t best = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const Node& n = nodes_[node];
    const Edge* lo = edges_.data() + n.first_edge;
    const Edge* hi = lo + n.num_edges;
    // Small fan-out: linear scan; large: binary search.
    const Edge* found = nullptr;
    if (n.num_edges <= 8) {
      for (const Edge* e = lo; e < hi; ++e) {
        if (e->byte == b) {
          found = e;
          break;
        }
      }
    } else {
      const Edge* e = std::lower_bound(lo, hi, b,
                                       [](const Edge& x, uint8_t v) { return x.byte < v; });
      if (e != hi && e->byte == b) found = e;
    }
    if (found == nullptr) break;
    node = found->child;
    if (nodes_[node].token >= 0) {
      best = i + 1 - pos;
      *token = nodes_[node].token;
    }
  }
  return best;
}

void AddedTokenMatcher::Split(absl::string_view text, std::vector<Piece>* out) const {
  size_t start_offset = 0;  // end of the previous emitted piece
  size_t pos = 0;           // where the search resumes (the end of the previous raw match)
  const size_t n = text.size();
  if (!empty()) {
    while (pos < n) {
      if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      int32_t t = -1;
      const size_t len = LongestMatch(text, pos, &t);
      if (len == 0) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = pos + len;
      pos = stop;
      const AddedToken& tok = tokens_[t];
      if (tok.single_word) {
        const bool start_space = start == 0 || !IsWordChar(LastCodePoint(text.substr(0, start)));
        const bool stop_space = stop == n || !IsWordChar(FirstCodePoint(text.substr(stop)));
        if (!start_space || !stop_space) continue;
      }
      if (tok.lstrip) {
        size_t s = start;
        while (s > 0) {
          size_t b = s - 1;
          while (b > 0 && (static_cast<uint8_t>(text[b]) & 0xC0) == 0x80) --b;
          if (!IsUnicodeWhitespace(DecodeCodePoint(text.data() + b, s - b))) break;
          s = b;
        }
        start = std::max(s, start_offset);
      }
      if (tok.rstrip) {
        while (stop < n) {
          size_t len2 = ValidSequenceLength(text, stop);
          if (len2 == 0) len2 = 1;
          if (!IsUnicodeWhitespace(DecodeCodePoint(text.data() + stop, len2))) break;
          stop += len2;
        }
        pos = std::max(pos, stop);
      }
      if (start_offset < start) out->push_back({-1, start_offset, start});
      out->push_back({tok.id, start, stop});
      start_offset = stop;
    }
  }
  if (start_offset < n) out->push_back({-1, start_offset, n});
}

}  // namespace g4::tokenizer_internal
