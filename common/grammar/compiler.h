// Compiles structured-output specs into CompiledGrammars for one vocabulary, with a bounded LRU
// cache keyed by the spec (StructuredOutputSpec::CacheKey; equal keys give equal grammars). A
// cached grammar keeps its per-node token masks, so a schema that comes back skips both the
// compile and the mask computations. The cache holds at most `max_entries` grammars and, at each
// Compile, evicts least recently used ones while their node masks take more than
// `max_mask_bytes` (grammars still in use by a request live on until it ends). Thread-safe.
#ifndef G4SERVE_COMMON_GRAMMAR_COMPILER_H_
#define G4SERVE_COMMON_GRAMMAR_COMPILER_H_

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/grammar/json_grammar.h"
#include "common/grammar/matcher.h"
#include "common/grammar/token_vocab.h"

namespace g4::grammar {

class GrammarCompiler {
 public:
  static constexpr size_t kDefaultCacheEntries = 64;
  static constexpr int64_t kDefaultMaxMaskBytes = int64_t{512} << 20;

  explicit GrammarCompiler(std::shared_ptr<const TokenVocab> vocab,
                           size_t max_entries = kDefaultCacheEntries,
                           int64_t max_mask_bytes = kDefaultMaxMaskBytes);

  // The compiled grammar of `spec` (InvalidArgument for a bad or unsupported spec, naming the
  // field and keyword as BuildGrammar does).
  absl::StatusOr<std::shared_ptr<const CompiledGrammar>> Compile(const StructuredOutputSpec& spec);

  const TokenVocab& vocab() const { return *vocab_; }

  struct Stats {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t entries = 0;
    int64_t mask_bytes = 0;  // node masks held by the cached grammars
  };
  Stats stats() const;

 private:
  struct Entry {
    std::shared_ptr<const CompiledGrammar> grammar;
    std::list<std::string>::iterator lru;
  };
  // Drops least recently used entries (never the most recent) beyond the limits.
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const TokenVocab> vocab_;
  const size_t max_entries_;
  const int64_t max_mask_bytes_;
  absl::flat_hash_set<std::string> special_tokens_;  // contents, for GrammarBuilder

  mutable absl::Mutex mu_;
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  absl::flat_hash_map<std::string, Entry> cache_ ABSL_GUARDED_BY(mu_);
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace g4::grammar

#endif  // G4SERVE_COMMON_GRAMMAR_COMPILER_H_
