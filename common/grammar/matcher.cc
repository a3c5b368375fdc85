#include "common/grammar/matcher.h"

#include <algorithm>
#include <array>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4::grammar {
namespace {

using Frame = GrammarMatcher::Frame;

// Expands stacks through calls and pops, and steps them over one symbol. Frames are appended to
// an arena the caller owns (and truncates when it backtracks).
class Stepper {
 public:
  explicit Stepper(const Grammar& g) : g_(g) {}

  // Appends to `terminals` the frames reachable from tops[0..n) through calls and pops whose
  // nodes have terminal edges. Returns whether a bottom frame (parent -1) at an accepting node
  // was reached: the stack can be completely popped.
  bool Expand(std::vector<Frame>& arena, const int32_t* tops, size_t n,
              std::vector<int32_t>* terminals) {
    if (n == 1) {  // the common case: a node with only terminal edges
      const Grammar::Node& x = g_.node(arena[tops[0]].node);
      if (x.call_begin == x.call_end && !x.accepting) {
        if (g_.has_terminal_edges(arena[tops[0]].node)) terminals->push_back(tops[0]);
        return false;
      }
    }
    bool bottom = false;
    seen_.clear();
    todo_.assign(tops, tops + n);
    while (!todo_.empty()) {
      const int32_t f = todo_.back();
      todo_.pop_back();
      const Frame fr = arena[f];
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(fr.node)) << 32) |
                           static_cast<uint32_t>(fr.parent);
      if (!seen_.insert(key).second) continue;
      if (g_.has_terminal_edges(fr.node)) terminals->push_back(f);
      for (const Grammar::CallEdge& c : g_.call_edges(fr.node)) {
        arena.push_back({c.target, fr.parent});
        arena.push_back({g_.rule_start(c.rule), static_cast<int32_t>(arena.size() - 1)});
        todo_.push_back(static_cast<int32_t>(arena.size() - 1));
      }
      if (g_.node(fr.node).accepting) {
        if (fr.parent >= 0) {
          todo_.push_back(fr.parent);
        } else {
          bottom = true;
        }
      }
    }
    return bottom;
  }

  // Appends to `out` the distinct frames reached from terminals[0..n) by `symbol`.
  void Step(std::vector<Frame>& arena, const int32_t* terminals, size_t n, int32_t symbol,
            std::vector<int32_t>* out) {
    const size_t first = out->size();
    auto add = [&](int32_t target, int32_t parent) {
      for (size_t k = first; k < out->size(); ++k) {
        const Frame& o = arena[(*out)[k]];
        if (o.node == target && o.parent == parent) return;
      }
      arena.push_back({target, parent});
      out->push_back(static_cast<int32_t>(arena.size() - 1));
    };
    for (size_t k = 0; k < n; ++k) {
      const Frame fr = arena[terminals[k]];
      if (symbol < kFirstSpecialSymbol) {
        for (const Grammar::ByteEdge& e : g_.byte_edges(fr.node)) {
          if (e.lo > symbol) break;  // sorted by lo
          if (symbol <= e.hi) add(e.target, fr.parent);
        }
      } else {
        for (const Grammar::SymbolEdge& e : g_.symbol_edges(fr.node)) {
          if (e.symbol == symbol) add(e.target, fr.parent);
        }
      }
    }
  }

 private:
  const Grammar& g_;
  std::vector<int32_t> todo_;
  absl::flat_hash_set<uint64_t> seen_;
};

// One depth of a trie walk: the stacks after `depth` bytes, their expansion (computed lazily,
// once), and where the shared arena/pool ended when the level was complete.
struct Level {
  // Fast form: one stack whose top `node` is a deterministic byte-only node (see ByteDfa); no
  // frames are materialized until the walk leaves such nodes.
  bool fast = false;
  int32_t node = -1, parent = -1;
  size_t tops_begin = 0, tops_end = 0;
  bool expanded = false;
  size_t terminals_begin = 0, terminals_end = 0;
  bool bottom = false;
  bool flag = false;     // (cache walks) a path left the rule on a FOLLOW symbol
  uint64_t next[4] = {};  // bytes some terminal edge accepts
  size_t arena_end = 0, pool_end = 0;
};

// Transition tables of "simple" nodes (no calls, not accepting, deterministic byte edges), built
// on first use during one mask computation: most of a walk through string contents then costs a
// table lookup per trie node.
class ByteDfa {
 public:
  explicit ByteDfa(const Grammar& g) : g_(g) {}

  // The table of `node`, or null when the node is not simple.
  const std::array<int32_t, 256>* Table(int32_t node) {
    if (node == last_node_) return last_table_;
    auto [it, inserted] = tables_.try_emplace(node);
    if (inserted) it->second = Build(node);
    last_node_ = node;
    last_table_ = it->second.get();
    return last_table_;
  }

 private:
  std::unique_ptr<std::array<int32_t, 256>> Build(int32_t node) {
    const Grammar::Node& x = g_.node(node);
    if (x.accepting || x.call_end > x.call_begin) return nullptr;
    auto table = std::make_unique<std::array<int32_t, 256>>();
    table->fill(-1);
    for (const Grammar::ByteEdge& e : g_.byte_edges(node)) {
      for (int b = e.lo; b <= e.hi; ++b) {
        if ((*table)[b] >= 0 && (*table)[b] != e.target) return nullptr;  // nondeterministic
        (*table)[b] = e.target;
      }
    }
    return table;
  }

  const Grammar& g_;
  absl::flat_hash_map<int32_t, std::unique_ptr<std::array<int32_t, 256>>> tables_;
  int32_t last_node_ = -1;
  const std::array<int32_t, 256>* last_table_ = nullptr;
};

void SetBit(absl::Span<uint32_t> bits, int32_t id) { bits[id >> 5] |= uint32_t{1} << (id & 31); }
bool GetBit(absl::Span<const uint32_t> bits, int32_t id) { return (bits[id >> 5] >> (id & 31)) & 1; }

// Expands `level` if needed (terminals appended to `pool`); truncates the arena and pool to
// where the level (with its expansion) ends.
void Prepare(Stepper& st, const Grammar& g, std::vector<Frame>& arena, std::vector<int32_t>& pool,
             std::vector<int32_t>& scratch, Level& level, bool want_next) {
  arena.resize(level.arena_end);
  pool.resize(level.pool_end);
  if (level.expanded) return;
  scratch.clear();
  level.bottom = st.Expand(arena, pool.data() + level.tops_begin,
                           level.tops_end - level.tops_begin, &scratch);
  level.terminals_begin = pool.size();
  pool.insert(pool.end(), scratch.begin(), scratch.end());
  level.terminals_end = pool.size();
  if (want_next) {
    std::fill(std::begin(level.next), std::end(level.next), 0);
    for (size_t k = level.terminals_begin; k < level.terminals_end; ++k) {
      for (const Grammar::ByteEdge& e : g.byte_edges(arena[pool[k]].node)) {
        for (int w = e.lo >> 6; w <= (e.hi >> 6); ++w) {
          const int lo = std::max<int>(e.lo, w * 64) - w * 64;
          const int hi = std::min<int>(e.hi, w * 64 + 63) - w * 64;
          const uint64_t bits = (hi == 63 ? ~uint64_t{0} : ((uint64_t{1} << (hi + 1)) - 1)) &
                                ~((uint64_t{1} << lo) - 1);
          level.next[w] |= bits;
        }
      }
    }
  }
  level.expanded = true;
  level.arena_end = arena.size();
  level.pool_end = pool.size();
}

}  // namespace

CompiledGrammar::CompiledGrammar(Grammar grammar, std::shared_ptr<const TokenVocab> vocab)
    : grammar_(std::move(grammar)),
      vocab_(std::move(vocab)),
      masks_(new std::atomic<const NodeMask*>[grammar_.num_nodes()]) {
  for (int32_t i = 0; i < grammar_.num_nodes(); ++i) masks_[i].store(nullptr);
  // Unrolled repetition positions whose bounds are equal once capped at the longest token (a
  // token cannot get further than that) classify every token alike: share one mask.
  alias_.resize(grammar_.num_nodes());
  const int64_t cap = vocab_->max_token_bytes() + 1;
  absl::flat_hash_map<std::tuple<int32_t, int32_t, int64_t, int64_t>, int32_t> representative;
  for (int32_t i = 0; i < grammar_.num_nodes(); ++i) {
    alias_[i] = i;
    const int32_t c = grammar_.mask_class(i);
    if (c < 0) continue;
    const auto key = std::make_tuple(grammar_.node(i).rule, c,
                                     std::min<int64_t>(grammar_.mask_class_min(i), cap),
                                     std::min<int64_t>(grammar_.mask_class_max(i), cap));
    alias_[i] = representative.try_emplace(key, i).first->second;
  }
}

absl::StatusOr<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::Create(
    Grammar grammar, std::shared_ptr<const TokenVocab> vocab) {
  std::shared_ptr<CompiledGrammar> c(new CompiledGrammar(std::move(grammar), std::move(vocab)));
  for (size_t i = 0; i < c->grammar_.specials().size(); ++i) {
    const std::string& text = c->grammar_.specials()[i];
    std::optional<int32_t> id = c->vocab_->SpecialToken(text);
    if (!id.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("grammar: the vocabulary has no special token \"", text, "\""));
    }
    c->special_tokens_.push_back(*id);
    c->symbol_of_token_[*id] = kFirstSpecialSymbol + static_cast<int32_t>(i);
  }
  return std::shared_ptr<const CompiledGrammar>(std::move(c));
}

int32_t CompiledGrammar::SymbolOfToken(int32_t id) const {
  auto it = symbol_of_token_.find(id);
  return it == symbol_of_token_.end() ? -1 : it->second;
}

const NodeMask& CompiledGrammar::MaskFor(int32_t node) const {
  node = alias_[node];
  if (const NodeMask* m = masks_[node].load(std::memory_order_acquire)) return *m;
  std::unique_ptr<NodeMask> computed = ComputeMask(node);
  absl::MutexLock lock(&mu_);
  if (const NodeMask* m = masks_[node].load(std::memory_order_acquire)) return *m;
  const NodeMask* m = computed.get();
  cached_bytes_ += static_cast<int64_t>(m->MemoryBytes());
  owned_.push_back(std::move(computed));
  masks_[node].store(m, std::memory_order_release);
  return *m;
}

int64_t CompiledGrammar::cached_nodes() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(owned_.size());
}

int64_t CompiledGrammar::cached_bytes() const {
  absl::MutexLock lock(&mu_);
  return cached_bytes_;
}

std::unique_ptr<NodeMask> CompiledGrammar::ComputeMask(int32_t node) const {
  const Grammar& g = grammar_;
  const TokenVocab& v = *vocab_;
  const auto& trie = v.trie();
  const int32_t rule = g.node(node).rule;
  auto mask = std::make_unique<NodeMask>();

  Stepper st(g);
  std::vector<Frame> arena = {{node, -1}};
  std::vector<int32_t> pool = {0}, scratch, stepped;
  std::vector<Level> levels(v.max_token_bytes() + 2);
  levels[0].tops_begin = 0;
  levels[0].tops_end = 1;
  levels[0].arena_end = arena.size();
  levels[0].pool_end = pool.size();

  ByteDfa dfa(g);
  if (dfa.Table(node) != nullptr) {
    levels[0].fast = true;
    levels[0].node = node;
    levels[0].parent = -1;
  }
  std::vector<int32_t> accepted_nodes;
  const int32_t n = static_cast<int32_t>(trie.size());
  auto skip = [&](int32_t& i, bool flag) {
    const TokenVocab::TrieNode& t = trie[i];
    if (flag) {  // every token below depends on the context
      for (int32_t j = i; j < t.subtree_end; ++j) {
        if (trie[j].tokens_end > trie[j].tokens_begin) mask->uncertain.push_back(j);
      }
    }
    i = t.subtree_end;
  };
  for (int32_t i = 1; i < n;) {
    const TokenVocab::TrieNode& t = trie[i];
    Level& parent = levels[t.depth - 1];
    Level& child = levels[t.depth];
    const int b = t.byte;
    if (parent.fast) {
      // A simple node: no calls, not accepting (so no path leaves the rule here).
      const int32_t target = (*dfa.Table(parent.node))[b];
      if (target < 0) {
        skip(i, parent.flag);
        continue;
      }
      child.flag = parent.flag;
      child.expanded = false;
      if (dfa.Table(target) != nullptr) {
        child.fast = true;
        child.node = target;
        child.parent = parent.parent;
        child.arena_end = parent.arena_end;
        child.pool_end = parent.pool_end;
      } else {
        arena.resize(parent.arena_end);
        pool.resize(parent.pool_end);
        arena.push_back({target, parent.parent});
        child.fast = false;
        child.tops_begin = pool.size();
        pool.push_back(static_cast<int32_t>(arena.size() - 1));
        child.tops_end = pool.size();
        child.arena_end = arena.size();
        child.pool_end = pool.size();
      }
      if (t.tokens_end > t.tokens_begin) accepted_nodes.push_back(i);
      ++i;
      continue;
    }
    Prepare(st, g, arena, pool, scratch, parent, /*want_next=*/true);
    const bool flag = parent.flag || (parent.bottom && g.FollowContains(rule, b));
    if (((parent.next[b >> 6] >> (b & 63)) & 1) == 0) {
      skip(i, flag);
      continue;
    }
    stepped.clear();
    st.Step(arena, pool.data() + parent.terminals_begin,
            parent.terminals_end - parent.terminals_begin, b, &stepped);
    child.expanded = false;
    child.flag = flag;
    if (stepped.size() == 1 && dfa.Table(arena[stepped[0]].node) != nullptr) {
      child.fast = true;
      child.node = arena[stepped[0]].node;
      child.parent = arena[stepped[0]].parent;
      child.arena_end = parent.arena_end;  // the parent frame is older than that
      child.pool_end = parent.pool_end;
    } else {
      child.fast = false;
      child.tops_begin = pool.size();
      pool.insert(pool.end(), stepped.begin(), stepped.end());
      child.tops_end = pool.size();
      child.arena_end = arena.size();
      child.pool_end = pool.size();
    }
    if (t.tokens_end > t.tokens_begin) accepted_nodes.push_back(i);
    ++i;
  }

  // Special tokens the grammar uses.
  {
    arena.resize(1);
    scratch.clear();
    const int32_t base = 0;
    const bool bottom = st.Expand(arena, &base, 1, &scratch);
    for (int32_t s = kFirstSpecialSymbol; s < g.num_symbols(); ++s) {
      stepped.clear();
      st.Step(arena, scratch.data(), scratch.size(), s, &stepped);
      if (!stepped.empty()) {
        mask->accepted_specials.push_back(special_token(s));
      } else if (bottom && g.FollowContains(rule, s)) {
        mask->uncertain_special_symbols.push_back(s);
      }
    }
  }

  // Accepted tokens, listed directly or as the complement, whichever is shorter.
  const auto ids = v.trie_token_ids();
  int64_t accepted = 0;
  for (int32_t i : accepted_nodes) accepted += trie[i].tokens_end - trie[i].tokens_begin;
  if (accepted * 2 <= v.num_byte_tokens()) {
    mask->ids.reserve(accepted);
    for (int32_t i : accepted_nodes) {
      mask->ids.insert(mask->ids.end(), ids.begin() + trie[i].tokens_begin,
                       ids.begin() + trie[i].tokens_end);
    }
  } else {
    mask->rejected_form = true;
    std::vector<uint32_t> is_accepted(v.bitmask_words(), 0);
    for (int32_t i : accepted_nodes) {
      for (int32_t k = trie[i].tokens_begin; k < trie[i].tokens_end; ++k) {
        SetBit(absl::MakeSpan(is_accepted), ids[k]);
      }
    }
    const auto& all = v.byte_token_bitmask();
    for (int32_t w = 0; w < v.bitmask_words(); ++w) {
      uint32_t rejected = all[w] & ~is_accepted[w];
      while (rejected != 0) {
        const int bit = __builtin_ctz(rejected);
        rejected &= rejected - 1;
        mask->ids.push_back(w * 32 + bit);
      }
    }
  }
  mask->ids.shrink_to_fit();
  mask->uncertain.shrink_to_fit();
  return mask;
}

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar,
                               std::vector<int32_t> end_tokens)
    : grammar_(std::move(grammar)), end_tokens_(std::move(end_tokens)) {
  const Grammar& g = grammar_->grammar();
  arena_.push_back({g.rule_start(g.root_rule()), -1});
  tops_.push_back(0);
}

int GrammarMatcher::max_stack_depth() const {
  int best = 0;
  for (int32_t t : tops_) {
    int d = 0;
    for (int32_t f = t; f >= 0; f = arena_[f].parent) ++d;
    best = std::max(best, d);
  }
  return best;
}

bool GrammarMatcher::CanEnd() const {
  if (terminated_) return false;
  std::vector<Frame> arena = arena_;
  std::vector<int32_t> terminals;
  Stepper st(grammar_->grammar());
  return st.Expand(arena, tops_.data(), tops_.size(), &terminals);
}

bool GrammarMatcher::AdvanceSymbols(const int32_t* symbols, size_t n) {
  if (n == 0) return false;  // a token that adds nothing is never allowed
  const size_t mark = arena_.size();
  Stepper st(grammar_->grammar());
  std::vector<int32_t> current = tops_, terminals, next;
  for (size_t k = 0; k < n; ++k) {
    terminals.clear();
    st.Expand(arena_, current.data(), current.size(), &terminals);
    next.clear();
    st.Step(arena_, terminals.data(), terminals.size(), symbols[k], &next);
    if (next.empty()) {
      arena_.resize(mark);
      return false;
    }
    current.swap(next);
  }
  Commit(current);
  return true;
}

bool GrammarMatcher::AcceptBytes(absl::string_view bytes) {
  if (terminated_) return false;
  std::vector<int32_t> symbols(bytes.begin(), bytes.end());
  for (int32_t& s : symbols) s &= 0xFF;
  return AdvanceSymbols(symbols.data(), symbols.size());
}

bool GrammarMatcher::AcceptToken(int32_t id) {
  if (terminated_) return false;
  const TokenVocab& v = grammar_->vocab();
  if (id < 0 || id >= v.size()) return false;
  if (std::find(end_tokens_.begin(), end_tokens_.end(), id) != end_tokens_.end() && CanEnd()) {
    terminated_ = true;
    return true;
  }
  switch (v.kind(id)) {
    case TokenVocab::Kind::kSpecial: {
      const int32_t symbol = grammar_->SymbolOfToken(id);
      return symbol >= 0 && AdvanceSymbols(&symbol, 1);
    }
    case TokenVocab::Kind::kBytes:
      return AcceptBytes(v.text(id));
    case TokenVocab::Kind::kNone:
      return false;
  }
  return false;
}

void GrammarMatcher::Commit(const std::vector<int32_t>& tops) {
  std::vector<Frame> fresh;
  absl::flat_hash_map<uint64_t, int32_t> index;
  std::vector<int32_t> chain;
  std::vector<int32_t> new_tops;
  for (int32_t t : tops) {
    chain.clear();
    for (int32_t f = t; f >= 0; f = arena_[f].parent) chain.push_back(f);
    int32_t parent = -1;
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      const int32_t node = arena_[*it].node;
      const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(node)) << 32) |
                           static_cast<uint32_t>(parent);
      auto [pos, inserted] = index.try_emplace(key, static_cast<int32_t>(fresh.size()));
      if (inserted) fresh.push_back({node, parent});
      parent = pos->second;
    }
    if (std::find(new_tops.begin(), new_tops.end(), parent) == new_tops.end()) {
      new_tops.push_back(parent);
      if (new_tops.size() == kMaxStacks) break;
    }
  }
  arena_ = std::move(fresh);
  tops_ = std::move(new_tops);
}

void GrammarMatcher::FillNextTokenBitmask(absl::Span<uint32_t> bitmask) {
  std::fill(bitmask.begin(), bitmask.end(), 0);
  if (terminated_) return;
  const Grammar& g = grammar_->grammar();
  const TokenVocab& v = grammar_->vocab();
  const auto& trie = v.trie();
  const auto ids = v.trie_token_ids();
  const size_t mark = arena_.size();
  Stepper st(g);

  std::vector<int32_t> order = tops_;
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return arena_[a].node < arena_[b].node; });
  bool fresh = true;  // bitmask still all zero
  std::vector<uint32_t> temp;
  std::vector<int32_t> pool, scratch, stepped;
  std::vector<Level> levels(v.max_token_bytes() + 2);
  for (size_t k = 0; k < order.size(); ++k) {
    const int32_t node = arena_[order[k]].node;
    const NodeMask& m = grammar_->MaskFor(node);
    if (k == 0 || arena_[order[k - 1]].node != node) {
      if (m.rejected_form) {
        absl::Span<uint32_t> target = bitmask;
        if (!fresh) {
          temp = v.byte_token_bitmask();
          target = absl::MakeSpan(temp);
        } else {
          std::copy(v.byte_token_bitmask().begin(), v.byte_token_bitmask().end(), bitmask.begin());
        }
        for (int32_t id : m.ids) target[id >> 5] &= ~(uint32_t{1} << (id & 31));
        if (!fresh) {
          for (size_t w = 0; w < bitmask.size(); ++w) bitmask[w] |= temp[w];
        }
      } else {
        for (int32_t id : m.ids) SetBit(bitmask, id);
      }
      for (int32_t id : m.accepted_specials) SetBit(bitmask, id);
      fresh = false;
    }

    // Uncertain tokens: walk them from this stack, sharing prefixes.
    const int32_t top = order[k];
    if (!m.uncertain_special_symbols.empty()) {
      scratch.clear();
      st.Expand(arena_, &top, 1, &scratch);
      for (int32_t s : m.uncertain_special_symbols) {
        stepped.clear();
        st.Step(arena_, scratch.data(), scratch.size(), s, &stepped);
        if (!stepped.empty()) SetBit(bitmask, grammar_->special_token(s));
      }
      arena_.resize(mark);
    }
    if (m.uncertain.empty()) continue;
    pool.assign(1, top);
    levels[0] = Level{};
    levels[0].tops_begin = 0;
    levels[0].tops_end = 1;
    levels[0].arena_end = mark;
    levels[0].pool_end = 1;
    const std::string* prev = nullptr;
    size_t valid = 0;  // levels[0..valid] hold the states along *prev
    for (int32_t u : m.uncertain) {
      const TokenVocab::TrieNode& t = trie[u];
      bool all_set = true;
      for (int32_t j = t.tokens_begin; j < t.tokens_end && all_set; ++j) {
        all_set = GetBit(bitmask, ids[j]);
      }
      if (all_set) continue;
      const std::string& s = v.text(ids[t.tokens_begin]);
      size_t lcp = 0;
      if (prev != nullptr) {
        while (lcp < s.size() && lcp < prev->size() && s[lcp] == (*prev)[lcp]) ++lcp;
      }
      prev = &s;
      size_t depth = std::min(lcp, valid);
      bool alive = depth == lcp || depth == s.size();
      if (depth < lcp) {
        // The walk of *prev died at depth valid + 1 <= lcp: this token shares that prefix.
        valid = depth;
        alive = false;
      }
      if (!alive) continue;
      for (; depth < s.size(); ++depth) {
        Level& parent = levels[depth];
        Prepare(st, g, arena_, pool, scratch, parent, /*want_next=*/false);
        stepped.clear();
        st.Step(arena_, pool.data() + parent.terminals_begin,
                parent.terminals_end - parent.terminals_begin,
                static_cast<uint8_t>(s[depth]), &stepped);
        if (stepped.empty()) break;
        Level& child = levels[depth + 1];
        child = Level{};
        child.tops_begin = pool.size();
        pool.insert(pool.end(), stepped.begin(), stepped.end());
        child.tops_end = pool.size();
        child.arena_end = arena_.size();
        child.pool_end = pool.size();
      }
      valid = depth;
      if (depth == s.size()) {
        for (int32_t j = t.tokens_begin; j < t.tokens_end; ++j) SetBit(bitmask, ids[j]);
      }
    }
    arena_.resize(mark);
  }
  if (CanEnd()) {
    for (int32_t id : end_tokens_) {
      if (id >= 0 && id < v.size()) SetBit(bitmask, id);
    }
  }
}

}  // namespace g4::grammar
