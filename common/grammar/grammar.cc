#include "common/grammar/grammar.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4::grammar {
namespace {

// A fixed-width bitset over symbols, stored in a flat vector (one row per node or rule).
struct BitRows {
  size_t words = 0;
  std::vector<uint64_t> bits;

  BitRows(size_t rows, int32_t num_bits) : words((num_bits + 63) / 64), bits(rows * words, 0) {}
  uint64_t* row(size_t r) { return bits.data() + r * words; }
  void Set(size_t r, int32_t bit) { row(r)[bit >> 6] |= uint64_t{1} << (bit & 63); }
  void SetRange(size_t r, int32_t lo, int32_t hi) {
    for (int32_t b = lo; b <= hi; ++b) Set(r, b);
  }
  // row(dst) |= row(src); true when something changed.
  bool Or(size_t dst, const uint64_t* src) {
    bool changed = false;
    uint64_t* d = row(dst);
    for (size_t w = 0; w < words; ++w) {
      const uint64_t v = d[w] | src[w];
      changed |= v != d[w];
      d[w] = v;
    }
    return changed;
  }
};

}  // namespace

GrammarBuilder::GrammarBuilder(absl::flat_hash_set<std::string> special_tokens)
    : special_tokens_(std::move(special_tokens)) {}

int32_t GrammarBuilder::AddRule(std::string name) {
  const int32_t rule = static_cast<int32_t>(rule_start_.size());
  rule_names_.push_back(std::move(name));
  rule_start_.push_back(-1);
  rule_start_[rule] = AddNode(rule);
  return rule;
}

int32_t GrammarBuilder::AddNode(int32_t rule) {
  nodes_.emplace_back();
  nodes_.back().rule = rule;
  return static_cast<int32_t>(nodes_.size() - 1);
}

void GrammarBuilder::AddBytes(int32_t from, uint8_t lo, uint8_t hi, int32_t to) {
  nodes_[from].bytes.push_back({lo, hi, to});
}

void GrammarBuilder::AddCall(int32_t from, int32_t rule, int32_t to) {
  nodes_[from].calls.push_back({rule, to});
}

void GrammarBuilder::AddEpsilon(int32_t from, int32_t to) {
  if (from != to) nodes_[from].epsilon.push_back(to);
}

void GrammarBuilder::AddLiteral(int32_t from, absl::string_view text, int32_t to) {
  if (text.empty()) {
    AddEpsilon(from, to);
    return;
  }
  int32_t at = from;
  for (size_t i = 0; i < text.size(); ++i) {
    const int32_t next = i + 1 == text.size() ? to : AddNode(nodes_[from].rule);
    AddByte(at, static_cast<uint8_t>(text[i]), next);
    at = next;
  }
}

void GrammarBuilder::SetMaskClass(int32_t node, int32_t mask_class, int64_t rmin, int64_t rmax) {
  constexpr int64_t kCap = std::numeric_limits<int32_t>::max();
  nodes_[node].mask_class = mask_class;
  nodes_[node].mask_class_min = static_cast<int32_t>(std::min(rmin, kCap));
  nodes_[node].mask_class_max = static_cast<int32_t>(std::min(rmax, kCap));
}

int32_t GrammarBuilder::SymbolFor(absl::string_view text) {
  for (size_t i = 0; i < specials_.size(); ++i) {
    if (specials_[i] == text) return kFirstSpecialSymbol + static_cast<int32_t>(i);
  }
  specials_.emplace_back(text);
  return kFirstSpecialSymbol + static_cast<int32_t>(specials_.size() - 1);
}

void GrammarBuilder::AddMarker(int32_t from, absl::string_view text, int32_t to) {
  if (special_tokens_.contains(text)) {
    nodes_[from].symbols.push_back({SymbolFor(text), to});
  } else {
    AddLiteral(from, text, to);
  }
}

absl::StatusOr<Grammar> GrammarBuilder::Build(int32_t root_rule) && {
  const int32_t n = static_cast<int32_t>(nodes_.size());
  const int32_t num_rules = static_cast<int32_t>(rule_start_.size());
  const int32_t num_symbols = kFirstSpecialSymbol + static_cast<int32_t>(specials_.size());

  // 1. Epsilon elimination: every node takes the edges and the accepting flag of the nodes its
  // epsilon edges reach.
  std::vector<BNode> merged(n);
  {
    std::vector<int32_t> seen(n, -1), todo;
    for (int32_t i = 0; i < n; ++i) {
      BNode& m = merged[i];
      m.rule = nodes_[i].rule;
      todo.assign(1, i);
      seen[i] = i;
      while (!todo.empty()) {
        const int32_t j = todo.back();
        todo.pop_back();
        const BNode& src = nodes_[j];
        m.accepting |= src.accepting;
        m.bytes.insert(m.bytes.end(), src.bytes.begin(), src.bytes.end());
        m.symbols.insert(m.symbols.end(), src.symbols.begin(), src.symbols.end());
        m.calls.insert(m.calls.end(), src.calls.begin(), src.calls.end());
        for (int32_t e : src.epsilon) {
          if (seen[e] != i) {
            seen[e] = i;
            todo.push_back(e);
          }
        }
      }
    }
  }

  // 2. Live nodes (can reach acceptance) and productive rules (derive some string), together.
  std::vector<char> live(n, 0), productive(num_rules, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t i = n - 1; i >= 0; --i) {
      if (live[i]) continue;
      const BNode& m = merged[i];
      bool l = m.accepting;
      for (const auto& e : m.bytes) l = l || live[e.target];
      for (const auto& e : m.symbols) l = l || live[e.target];
      for (const auto& e : m.calls) l = l || (productive[e.rule] && live[e.target]);
      if (l) {
        live[i] = 1;
        changed = true;
        if (rule_start_[m.rule] == i) productive[m.rule] = 1;
      }
    }
  }
  if (root_rule < 0 || root_rule >= num_rules || !productive[root_rule]) {
    return absl::InvalidArgumentError("the schema is unsatisfiable: no JSON value matches it");
  }

  // 3. Prune edges into dead nodes and calls of unproductive rules; dedupe edges.
  for (BNode& m : merged) {
    auto dead_byte = [&](const Grammar::ByteEdge& e) { return !live[e.target]; };
    m.bytes.erase(std::remove_if(m.bytes.begin(), m.bytes.end(), dead_byte), m.bytes.end());
    std::sort(m.bytes.begin(), m.bytes.end(), [](const auto& a, const auto& b) {
      return std::tie(a.lo, a.hi, a.target) < std::tie(b.lo, b.hi, b.target);
    });
    m.bytes.erase(std::unique(m.bytes.begin(), m.bytes.end(),
                              [](const auto& a, const auto& b) {
                                return a.lo == b.lo && a.hi == b.hi && a.target == b.target;
                              }),
                  m.bytes.end());
    auto dead_symbol = [&](const Grammar::SymbolEdge& e) { return !live[e.target]; };
    m.symbols.erase(std::remove_if(m.symbols.begin(), m.symbols.end(), dead_symbol),
                    m.symbols.end());
    std::sort(m.symbols.begin(), m.symbols.end(), [](const auto& a, const auto& b) {
      return std::tie(a.symbol, a.target) < std::tie(b.symbol, b.target);
    });
    m.symbols.erase(std::unique(m.symbols.begin(), m.symbols.end(),
                                [](const auto& a, const auto& b) {
                                  return a.symbol == b.symbol && a.target == b.target;
                                }),
                    m.symbols.end());
    auto dead_call = [&](const Grammar::CallEdge& e) {
      return !productive[e.rule] || !live[e.target];
    };
    m.calls.erase(std::remove_if(m.calls.begin(), m.calls.end(), dead_call), m.calls.end());
    std::sort(m.calls.begin(), m.calls.end(), [](const auto& a, const auto& b) {
      return std::tie(a.rule, a.target) < std::tie(b.rule, b.target);
    });
    m.calls.erase(std::unique(m.calls.begin(), m.calls.end(),
                              [](const auto& a, const auto& b) {
                                return a.rule == b.rule && a.target == b.target;
                              }),
                  m.calls.end());
  }

  // 4. Reachable nodes from the root.
  std::vector<char> reachable(n, 0);
  {
    std::vector<int32_t> todo = {rule_start_[root_rule]};
    reachable[todo[0]] = 1;
    auto visit = [&](int32_t x) {
      if (!reachable[x]) {
        reachable[x] = 1;
        todo.push_back(x);
      }
    };
    while (!todo.empty()) {
      const int32_t i = todo.back();
      todo.pop_back();
      for (const auto& e : merged[i].bytes) visit(e.target);
      for (const auto& e : merged[i].symbols) visit(e.target);
      for (const auto& e : merged[i].calls) {
        visit(e.target);
        visit(rule_start_[e.rule]);
      }
    }
  }

  // 5. Nullable: a node can reach acceptance through calls of nullable rules only.
  std::vector<char> nullable(n, 0), nullable_rule(num_rules, 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t i = n - 1; i >= 0; --i) {
      if (nullable[i]) continue;
      const BNode& m = merged[i];
      bool z = m.accepting;
      for (const auto& e : m.calls) z = z || (nullable_rule[e.rule] && nullable[e.target]);
      if (z) {
        nullable[i] = 1;
        changed = true;
        if (rule_start_[m.rule] == i) nullable_rule[m.rule] = 1;
      }
    }
  }

  // 6. Left recursion: rule R "left-calls" S when S is called from a node that R's start reaches
  // through calls of nullable rules. A cycle would make the matcher's closure loop forever.
  {
    std::vector<std::vector<int32_t>> left(num_rules);
    std::vector<int32_t> mark(n, -1), todo;
    for (int32_t r = 0; r < num_rules; ++r) {
      if (!reachable[rule_start_[r]]) continue;
      todo.assign(1, rule_start_[r]);
      mark[rule_start_[r]] = r;
      while (!todo.empty()) {
        const int32_t i = todo.back();
        todo.pop_back();
        for (const auto& e : merged[i].calls) {
          left[r].push_back(e.rule);
          if (nullable_rule[e.rule] && mark[e.target] != r) {
            mark[e.target] = r;
            todo.push_back(e.target);
          }
        }
      }
    }
    std::vector<int8_t> color(num_rules, 0);  // 0 new, 1 on stack, 2 done
    for (int32_t r = 0; r < num_rules; ++r) {
      if (color[r] != 0) continue;
      std::vector<std::pair<int32_t, size_t>> stack = {{r, 0}};
      color[r] = 1;
      while (!stack.empty()) {
        auto& [rule, next] = stack.back();
        if (next == left[rule].size()) {
          color[rule] = 2;
          stack.pop_back();
          continue;
        }
        const int32_t s = left[rule][next++];
        if (color[s] == 1) {
          return absl::InvalidArgumentError(absl::StrCat(
              "left recursion through '", rule_names_[s],
              "': a $ref cycle that can recurse without producing any output is not supported"));
        }
        if (color[s] == 0) {
          color[s] = 1;
          stack.push_back({s, 0});
        }
      }
    }
  }

  // 7. FIRST of every node (symbols that can come first from it) and FOLLOW of every rule.
  BitRows first(n, num_symbols);
  BitRows rule_first(num_rules, num_symbols);
  for (int32_t i = 0; i < n; ++i) {
    for (const auto& e : merged[i].bytes) first.SetRange(i, e.lo, e.hi);
    for (const auto& e : merged[i].symbols) first.Set(i, e.symbol);
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t i = n - 1; i >= 0; --i) {
      for (const auto& e : merged[i].calls) {
        changed |= first.Or(i, rule_first.row(e.rule));
        if (nullable_rule[e.rule]) changed |= first.Or(i, first.row(e.target));
      }
      if (rule_start_[merged[i].rule] == i) changed |= rule_first.Or(merged[i].rule, first.row(i));
    }
  }
  BitRows follow(num_rules, num_symbols);
  for (bool changed = true; changed;) {
    changed = false;
    for (int32_t i = 0; i < n; ++i) {
      if (!reachable[i]) continue;
      for (const auto& e : merged[i].calls) {
        changed |= follow.Or(e.rule, first.row(e.target));
        if (nullable[e.target]) changed |= follow.Or(e.rule, follow.row(merged[i].rule));
      }
    }
  }

  // 8. Flatten.
  Grammar g;
  g.nodes_.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    const BNode& m = merged[i];
    Grammar::Node& x = g.nodes_[i];
    x.rule = m.rule;
    x.accepting = m.accepting;
    x.byte_begin = static_cast<uint32_t>(g.bytes_.size());
    g.bytes_.insert(g.bytes_.end(), m.bytes.begin(), m.bytes.end());
    x.byte_end = static_cast<uint32_t>(g.bytes_.size());
    x.symbol_begin = static_cast<uint32_t>(g.symbols_.size());
    g.symbols_.insert(g.symbols_.end(), m.symbols.begin(), m.symbols.end());
    x.symbol_end = static_cast<uint32_t>(g.symbols_.size());
    x.call_begin = static_cast<uint32_t>(g.calls_.size());
    g.calls_.insert(g.calls_.end(), m.calls.begin(), m.calls.end());
    x.call_end = static_cast<uint32_t>(g.calls_.size());
    g.mask_class_.push_back(nodes_[i].mask_class);
    g.mask_class_min_.push_back(nodes_[i].mask_class_min);
    g.mask_class_max_.push_back(nodes_[i].mask_class_max);
  }
  g.rule_start_ = std::move(rule_start_);
  g.rule_names_ = std::move(rule_names_);
  g.specials_ = std::move(specials_);
  g.root_ = root_rule;
  g.follow_words_ = follow.words;
  g.follow_ = std::move(follow.bits);
  return g;
}

}  // namespace g4::grammar
