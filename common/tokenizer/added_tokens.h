// Added-token matching, as HF tokenizers' AddedVocabulary does it before normalization and BPE:
// leftmost-longest, non-overlapping matches of the token contents (an Aho-Corasick
// LeftmostLongest search there, a byte trie here), honouring single_word / lstrip / rstrip.
#ifndef G4SERVE_COMMON_TOKENIZER_ADDED_TOKENS_H_
#define G4SERVE_COMMON_TOKENIZER_ADDED_TOKENS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace g4::tokenizer_internal {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

class AddedTokenMatcher {
 public:
  // One piece of the split: an added token (`id` >= 0) or plain text (`id` == -1).
  struct Piece {
    int32_t id;
    size_t begin, end;  // byte range in the input
  };

  AddedTokenMatcher() = default;
  // `tokens` with empty content are ignored. `patterns[i]` is the string searched for tokens[i]
  // (the content, or its normalized form).
  void Build(const std::vector<const AddedToken*>& tokens,
             const std::vector<std::string>& patterns);
  bool empty() const { return nodes_.size() <= 1; }

  // Splits `text` into added tokens and the text between them (in order; no empty text pieces).
  void Split(absl::string_view text, std::vector<Piece>* out) const;

 private:
  struct Node {
    uint32_t first_edge = 0;
    uint32_t num_edges = 0;
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  struct Edge {
    uint8_t byte;
    uint32_t child;
  };
  // Length of the longest pattern starting at text[pos] (0 if none) and its token index.
  size_t LongestMatch(absl::string_view text, size_t pos, int32_t* token) const;

  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<AddedToken> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_ADDED_TOKENS_H_
