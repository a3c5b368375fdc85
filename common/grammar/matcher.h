// Grammar-constrained decoding: a Grammar bound to a vocabulary (CompiledGrammar) and the
// per-sequence state that accepts tokens and produces the next-token bitmask (GrammarMatcher).
//
// Matcher state: a set of stacks of grammar nodes (a pushdown automaton; more than one stack
// while alternatives are still open, e.g. anyOf branches that start alike). The token mask for a
// state is the union over its stacks. For the stack top node n, every token falls into one of
// three classes that do not depend on the rest of the stack ("context independent"):
//   accepted  - some path consumes the whole token without leaving n's rule;
//   rejected  - every path dies inside n's rule, or leaves it on a symbol no caller can follow
//               (the rule's FOLLOW set);
//   uncertain - only paths that leave the rule survive: decided at run time with the real stack.
// CompiledGrammar computes this per node on first use (one walk of the vocabulary trie that
// shares prefixes and prunes rejected subtrees; the idea xgrammar calls the adaptive token mask
// cache) and keeps it. A mask is then a copy of the cached set plus a check of the few uncertain
// tokens (again as a trie walk over them, sharing prefixes). docs/structured_outputs.md.
//
// Bitmask layout (the xgrammar convention, so a GPU backend can apply it on the device): uint32
// words, ceil(vocab / 32) of them; token id t is allowed when bit (t % 32) of word t / 32 is set.
#ifndef G4SERVE_COMMON_GRAMMAR_MATCHER_H_
#define G4SERVE_COMMON_GRAMMAR_MATCHER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "common/grammar/grammar.h"
#include "common/grammar/token_vocab.h"

namespace g4::grammar {

// The cached classification of the vocabulary at one grammar node (see the file comment).
struct NodeMask {
  bool rejected_form = false;  // `ids` lists rejected (incl. uncertain) byte tokens, else accepted
  std::vector<int32_t> ids;
  std::vector<int32_t> uncertain;  // trie nodes, depth-first order
  std::vector<int32_t> accepted_specials;           // token ids
  std::vector<int32_t> uncertain_special_symbols;   // grammar symbols
  size_t MemoryBytes() const {
    return (ids.size() + uncertain.size() + accepted_specials.size() +
            uncertain_special_symbols.size()) * sizeof(int32_t) + sizeof(NodeMask);
  }
};

class CompiledGrammar {
 public:
  // FailedPrecondition when the grammar uses a special token the vocabulary lacks.
  static absl::StatusOr<std::shared_ptr<const CompiledGrammar>> Create(
      Grammar grammar, std::shared_ptr<const TokenVocab> vocab);

  const Grammar& grammar() const { return grammar_; }
  const TokenVocab& vocab() const { return *vocab_; }
  // Token id of a special symbol, and the symbol of a special token id (-1: none).
  int32_t special_token(int32_t symbol) const {
    return special_tokens_[symbol - kFirstSpecialSymbol];
  }
  int32_t SymbolOfToken(int32_t id) const;

  // The mask cache of `node`, computed on first use. Thread-safe.
  const NodeMask& MaskFor(int32_t node) const;
  // Nodes cached so far and their memory.
  int64_t cached_nodes() const;
  int64_t cached_bytes() const;

 private:
  CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenVocab> vocab);
  std::unique_ptr<NodeMask> ComputeMask(int32_t node) const;

  Grammar grammar_;
  std::shared_ptr<const TokenVocab> vocab_;
  std::vector<int32_t> special_tokens_;
  absl::flat_hash_map<int32_t, int32_t> symbol_of_token_;
  std::vector<int32_t> alias_;  // node -> the node whose mask it shares (itself by default)
  std::unique_ptr<std::atomic<const NodeMask*>[]> masks_;
  mutable absl::Mutex mu_;
  mutable std::vector<std::unique_ptr<NodeMask>> owned_ ABSL_GUARDED_BY(mu_);
  mutable int64_t cached_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

class GrammarMatcher {
 public:
  // Most stacks kept after a token. Ambiguous grammars (e.g. nested anyOf with alike
  // alternatives) could otherwise multiply them; every stack can still complete, so keeping a
  // subset stays sound (the mask can only shrink, never empty).
  static constexpr size_t kMaxStacks = 256;

  // `end_tokens`: the ids that end the output once the grammar is complete (the request's stop
  // tokens: <eos>, <turn|>, <|tool_response> for Gemma 4).
  GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar, std::vector<int32_t> end_tokens);

  // Advances by one token. False (and no change) when the token is not allowed here. An end
  // token is allowed exactly when the grammar is complete; it terminates the matcher.
  bool AcceptToken(int32_t id);
  // Advances by raw bytes (tests and validation). False (and no change) when rejected.
  bool AcceptBytes(absl::string_view bytes);

  // The grammar has matched a complete string (an end token would be accepted).
  bool CanEnd() const;
  // An end token was accepted: nothing more is allowed.
  bool IsTerminated() const { return terminated_; }

  // Writes the allowed next tokens into `bitmask` (vocab().bitmask_words() words, every word
  // overwritten). Not thread-safe per matcher (it uses scratch space); distinct matchers may
  // run on different threads.
  void FillNextTokenBitmask(absl::Span<uint32_t> bitmask);

  const CompiledGrammar& compiled() const { return *grammar_; }
  int num_stacks() const { return static_cast<int>(tops_.size()); }
  int max_stack_depth() const;

  struct Frame {
    int32_t node;
    int32_t parent;  // index into the arena, -1 at the bottom
  };

 private:
  bool AdvanceSymbols(const int32_t* symbols, size_t n);
  // Keeps only `tops` (frames of arena_), hash-consing their stacks into a compact arena.
  void Commit(const std::vector<int32_t>& tops);

  std::shared_ptr<const CompiledGrammar> grammar_;
  std::vector<int32_t> end_tokens_;
  std::vector<Frame> arena_;
  std::vector<int32_t> tops_;  // distinct stacks
  bool terminated_ = false;
};

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_MATCHER_H_
