#include "common/grammar/compiler.h"

#include <algorithm>
#include <utility>

#include "common/status_macros.h"

namespace g4::grammar {

GrammarCompiler::GrammarCompiler(std::shared_ptr<const TokenVocab> vocab, size_t max_entries,
                                 int64_t max_mask_bytes)
    : vocab_(std::move(vocab)),
      max_entries_(std::max<size_t>(max_entries, 1)),
      max_mask_bytes_(max_mask_bytes) {
  for (const auto& [text, id] : vocab_->special_tokens()) special_tokens_.insert(text);
}

absl::StatusOr<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::Compile(
    const StructuredOutputSpec& spec) {
  const std::string key = spec.CacheKey();
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      ++hits_;
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      std::shared_ptr<const CompiledGrammar> grammar = it->second.grammar;
      EvictLocked();
      return grammar;
    }
    ++misses_;
  }
  G4_ASSIGN_OR_RETURN(Grammar grammar, BuildGrammar(spec, special_tokens_));
  G4_ASSIGN_OR_RETURN(std::shared_ptr<const CompiledGrammar> compiled,
                      CompiledGrammar::Create(std::move(grammar), vocab_));
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second.grammar;  // compiled concurrently
  lru_.push_front(key);
  cache_[key] = Entry{compiled, lru_.begin()};
  EvictLocked();
  return compiled;
}

void GrammarCompiler::EvictLocked() {
  int64_t bytes = 0;
  for (const auto& [key, entry] : cache_) bytes += entry.grammar->cached_bytes();
  while (cache_.size() > 1 && (cache_.size() > max_entries_ || bytes > max_mask_bytes_)) {
    auto it = cache_.find(lru_.back());
    bytes -= it->second.grammar->cached_bytes();
    cache_.erase(it);
    lru_.pop_back();
  }
}

GrammarCompiler::Stats GrammarCompiler::stats() const {
  absl::MutexLock lock(&mu_);
  int64_t bytes = 0;
  for (const auto& [key, entry] : cache_) bytes += entry.grammar->cached_bytes();
  return Stats{hits_, misses_, static_cast<int64_t>(cache_.size()), bytes};
}

}  // namespace g4::grammar
