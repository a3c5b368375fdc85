// A context-free grammar over bytes as a recursive transition network: each rule is a small
// automaton whose edges consume a byte range, a special-token symbol, or call another rule
// (a call pushes the return node; an accepting node may pop back to the caller). Recursion (a
// $ref cycle) is therefore a pushdown automaton; everything else is plain states.
//
// GrammarBuilder takes epsilon edges for convenience; Build() removes them, prunes what cannot
// derive a string, rejects left recursion (a rule that can call itself without consuming a
// byte: the matcher's closure would not terminate) and computes FOLLOW sets, which the token
// mask cache uses to classify tokens that run past the end of a rule (docs/structured_outputs.md).
//
// Symbols: bytes are 0..255; special token i (Grammar::specials()[i], e.g. "<|tool_call>") is
// kFirstSpecialSymbol + i. A special token is a single symbol, never its spelled-out bytes.
#ifndef G4SERVE_COMMON_GRAMMAR_GRAMMAR_H_
#define G4SERVE_COMMON_GRAMMAR_GRAMMAR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace g4::grammar {

inline constexpr int32_t kFirstSpecialSymbol = 256;

class Grammar {
 public:
  struct ByteEdge {
    uint8_t lo, hi;  // inclusive byte range
    int32_t target;
  };
  struct SymbolEdge {
    int32_t symbol;  // >= kFirstSpecialSymbol
    int32_t target;
  };
  struct CallEdge {
    int32_t rule;
    int32_t target;  // the node the callee returns to
  };
  struct Node {
    int32_t rule = 0;
    bool accepting = false;  // the rule may end here
    uint32_t byte_begin = 0, byte_end = 0;
    uint32_t symbol_begin = 0, symbol_end = 0;
    uint32_t call_begin = 0, call_end = 0;
  };

  int32_t num_nodes() const { return static_cast<int32_t>(nodes_.size()); }
  const Node& node(int32_t n) const { return nodes_[n]; }
  absl::Span<const ByteEdge> byte_edges(int32_t n) const {
    const Node& x = nodes_[n];
    return absl::MakeConstSpan(bytes_.data() + x.byte_begin, x.byte_end - x.byte_begin);
  }
  absl::Span<const SymbolEdge> symbol_edges(int32_t n) const {
    const Node& x = nodes_[n];
    return absl::MakeConstSpan(symbols_.data() + x.symbol_begin, x.symbol_end - x.symbol_begin);
  }
  absl::Span<const CallEdge> call_edges(int32_t n) const {
    const Node& x = nodes_[n];
    return absl::MakeConstSpan(calls_.data() + x.call_begin, x.call_end - x.call_begin);
  }
  bool has_terminal_edges(int32_t n) const {
    const Node& x = nodes_[n];
    return x.byte_end > x.byte_begin || x.symbol_end > x.symbol_begin;
  }

  int32_t num_rules() const { return static_cast<int32_t>(rule_start_.size()); }
  int32_t rule_start(int32_t rule) const { return rule_start_[rule]; }
  const std::string& rule_name(int32_t rule) const { return rule_names_[rule]; }
  int32_t root_rule() const { return root_; }

  // The special-token texts the grammar uses; symbol kFirstSpecialSymbol + i is specials()[i].
  const std::vector<std::string>& specials() const { return specials_; }
  int32_t num_symbols() const { return kFirstSpecialSymbol + static_cast<int32_t>(specials_.size()); }

  // Whether `symbol` can come first after `rule` completes, in some context.
  bool FollowContains(int32_t rule, int32_t symbol) const {
    const uint64_t word = follow_[static_cast<size_t>(rule) * follow_words_ + (symbol >> 6)];
    return (word >> (symbol & 63)) & 1;
  }

  // Mask classes (see GrammarBuilder::SetMaskClass): -1 when the node has none.
  int32_t mask_class(int32_t n) const { return mask_class_[n]; }
  int32_t mask_class_min(int32_t n) const { return mask_class_min_[n]; }
  int32_t mask_class_max(int32_t n) const { return mask_class_max_[n]; }

  // Total edges (size statistics for benchmarks and tests).
  size_t num_edges() const { return bytes_.size() + symbols_.size() + calls_.size(); }

 private:
  friend class GrammarBuilder;

  std::vector<Node> nodes_;
  std::vector<ByteEdge> bytes_;
  std::vector<SymbolEdge> symbols_;
  std::vector<CallEdge> calls_;
  std::vector<int32_t> rule_start_;
  std::vector<std::string> rule_names_;
  std::vector<std::string> specials_;
  int32_t root_ = 0;
  size_t follow_words_ = 0;
  std::vector<uint64_t> follow_;  // num_rules * follow_words_
  std::vector<int32_t> mask_class_, mask_class_min_, mask_class_max_;
};

class GrammarBuilder {
 public:
  // `special_tokens`: texts the vocabulary has as special tokens. AddMarker(text) becomes one
  // special-token symbol when `text` is among them, else the literal bytes of `text`.
  explicit GrammarBuilder(absl::flat_hash_set<std::string> special_tokens = {});

  // A new rule with a fresh start node; returns the rule id.
  int32_t AddRule(std::string name);
  int32_t start(int32_t rule) const { return rule_start_[rule]; }
  // A new node in `rule`.
  int32_t AddNode(int32_t rule);
  int32_t rule_of(int32_t node) const { return nodes_[node].rule; }
  void SetAccepting(int32_t node) { nodes_[node].accepting = true; }

  void AddBytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to);
  void AddByte(int32_t from, uint8_t b, int32_t to) { AddBytes(from, b, b, to); }
  void AddCall(int32_t from, int32_t rule, int32_t to);
  void AddEpsilon(int32_t from, int32_t to);
  // The bytes of `text` from `from` to `to` through fresh nodes (epsilon when empty).
  void AddLiteral(int32_t from, absl::string_view text, int32_t to);
  // A special token (see the constructor) or its literal text.
  void AddMarker(int32_t from, absl::string_view text, int32_t to);
  bool IsSpecialToken(absl::string_view text) const { return special_tokens_.contains(text); }

  // Declares `node` one of a family of nodes whose token classification is the same once
  // (rmin, rmax) are capped at the longest token: the unrolled positions of a counted
  // repetition, where rmin / rmax are the repetitions still required / still allowed (rmax
  // INT32_MAX: unbounded) and `mask_class` identifies the role of the node within a position
  // (NewMaskClasses hands out ids). CompiledGrammar computes one mask for each family member
  // with equal capped bounds, instead of one per position.
  int32_t NewMaskClasses(int32_t count) {
    const int32_t first = next_mask_class_;
    next_mask_class_ += count;
    return first;
  }
  void SetMaskClass(int32_t node, int32_t mask_class, int64_t rmin, int64_t rmax);

  int32_t num_nodes() const { return static_cast<int32_t>(nodes_.size()); }

  // Finalizes the grammar rooted at `root_rule`. InvalidArgument when the root derives no string
  // ("unsatisfiable") or when a rule is left-recursive (names the rule). The builder is consumed.
  absl::StatusOr<Grammar> Build(int32_t root_rule) &&;

 private:
  struct BNode {
    int32_t rule = 0;
    bool accepting = false;
    std::vector<Grammar::ByteEdge> bytes;
    std::vector<Grammar::SymbolEdge> symbols;
    std::vector<Grammar::CallEdge> calls;
    std::vector<int32_t> epsilon;
    int32_t mask_class = -1, mask_class_min = 0, mask_class_max = 0;
  };

  int32_t SymbolFor(absl::string_view text);

  absl::flat_hash_set<std::string> special_tokens_;
  std::vector<BNode> nodes_;
  std::vector<int32_t> rule_start_;
  std::vector<std::string> rule_names_;
  std::vector<std::string> specials_;
  int32_t next_mask_class_ = 0;
};

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_GRAMMAR_H_
