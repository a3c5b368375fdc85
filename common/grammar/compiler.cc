#include "common/grammar/compiler.h"

#include <utility>

#include "common/status_macros.h"

namespace g4::grammar {

GrammarCompiler::GrammarCompiler(std::shared_ptr<const TokenVocab> vocab, size_t max_entries)
    : vocab_(std::move(vocab)), max_entries_(std::max<size_t>(max_entries, 1)) {
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
      return it->second.grammar;
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
  while (cache_.size() > max_entries_) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
  return compiled;
}

GrammarCompiler::Stats GrammarCompiler::stats() const {
  absl::MutexLock lock(&mu_);
  return Stats{hits_, misses_, static_cast<int64_t>(cache_.size())};
}

}  // namespace g4::grammar
