// Randomized operation sequences (fixed seeds) against KvBlockManager, checking after every
// operation: pool invariants and refcount == table references (Validate), free + cached + used
// == total, the rank-side mirror built from deltas == the tables, and, through a shadow of
// what each page holds, that every adopted prefix page holds exactly the adopting prompt's
// tokens (prefix caching never hands out wrong KV, in either pool, across eviction and reuse).
#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace g4 {
namespace {

struct Params {
  int block_size;
  int window;
  int64_t global_pages;
  int64_t sliding_pages;
  bool prefix_caching;
  uint64_t seed;
};

class KvBlockManagerRandomTest : public ::testing::TestWithParam<Params> {};

struct Live {
  std::vector<int32_t> tokens;  // tokens[0, len) have slots and are computed
  int64_t committed = 0;
  BlockTableMirror mirror;
};

TEST_P(KvBlockManagerRandomTest, InvariantsHoldUnderRandomOperations) {
  const Params prm = GetParam();
  KvBlockManagerOptions o;
  o.block_size = prm.block_size;
  o.sliding_window = prm.window;
  o.num_global_pages = prm.global_pages;
  o.num_sliding_pages = prm.sliding_pages;
  o.enable_prefix_caching = prm.prefix_caching;
  auto m_or = KvBlockManager::Create(o);
  ASSERT_TRUE(m_or.ok()) << m_or.status();
  KvBlockManager& m = **m_or;
  const int B = prm.block_size;
  std::mt19937_64 rng(prm.seed);
  auto uni = [&](int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };

  // Prompt families sharing prefixes; a tiny vocabulary makes equal blocks across sequences.
  std::vector<std::vector<int32_t>> families(4);
  for (auto& f : families) {
    for (int i = 0; i < 80; ++i) f.push_back(static_cast<int32_t>(uni(0, 3)));
  }
  // shadow[pool][page]: the token prefix whose last block the page holds.
  std::vector<std::vector<int32_t>> shadow[2] = {
      std::vector<std::vector<int32_t>>(prm.global_pages),
      std::vector<std::vector<int32_t>>(prm.sliding_pages)};
  std::map<uint64_t, Live> live;
  uint64_t next_id = 1;
  int64_t hits = 0, exhausted = 0, adds = 0;

  auto write_shadow = [&](uint64_t id, const Live& s, int64_t old_len) {
    auto t = m.Tables(id);
    ASSERT_TRUE(t.has_value());
    const int64_t len = t->num_tokens;
    for (int64_t b = old_len / B; b * B < len; ++b) {
      std::vector<int32_t> prefix(s.tokens.begin(),
                                  s.tokens.begin() + std::min<int64_t>(len, (b + 1) * B));
      if (!t->global.empty()) shadow[0][t->global[b]] = prefix;
      const int64_t i = b - t->sliding_first_block;
      if (i >= 0 && i < static_cast<int64_t>(t->sliding.size())) {
        shadow[1][t->sliding[i]] = std::move(prefix);
      }
    }
  };
  auto check_adopted = [&](uint64_t id, const std::vector<int32_t>& prompt) {
    auto t = m.Tables(id);
    ASSERT_TRUE(t.has_value());
    for (size_t b = 0; b < t->global.size(); ++b) {
      ASSERT_EQ(shadow[0][t->global[b]],
                std::vector<int32_t>(prompt.begin(), prompt.begin() + (b + 1) * B))
          << "global block " << b;
    }
    for (size_t i = 0; i < t->sliding.size(); ++i) {
      const int64_t b = t->sliding_first_block + static_cast<int64_t>(i);
      ASSERT_EQ(shadow[1][t->sliding[i]],
                std::vector<int32_t>(prompt.begin(), prompt.begin() + (b + 1) * B))
          << "sliding block " << b;
    }
    if (m.has_pool(KvPool::kSliding) && t->num_tokens > 0) {
      // The window of the first query to compute (position num_tokens) is fully present.
      const int64_t first = std::max<int64_t>(0, t->num_tokens - prm.window + 1) / B;
      ASSERT_EQ(t->sliding_first_block, first);
      ASSERT_EQ(t->sliding_first_block + static_cast<int64_t>(t->sliding.size()),
                t->num_tokens / B);
    }
  };
  auto add = [&](uint64_t id, std::vector<int32_t> prompt) {
    const int64_t expect = m.MatchPrefix(prompt);
    auto cached = m.AddSequence(id, prompt);
    ASSERT_TRUE(cached.ok()) << cached.status();
    ASSERT_EQ(*cached, expect);
    ASSERT_EQ(*cached % B, 0);
    ASSERT_LT(*cached, std::max<int64_t>(1, static_cast<int64_t>(prompt.size())));
    check_adopted(id, prompt);
    hits += *cached > 0;
    ++adds;
    Live& s = live[id];
    s.tokens = std::move(prompt);
    s.committed = *cached;
    s.mirror = BlockTableMirror();
  };

  constexpr int kOps = 10000;
  for (int op = 0; op < kOps; ++op) {
    const int64_t r = uni(0, 99);
    if (live.empty() || (r < 20 && live.size() < 12)) {
      // New request: a family prefix, then a random tail.
      const auto& f = families[uni(0, 3)];
      std::vector<int32_t> prompt(f.begin(), f.begin() + uni(0, 60));
      for (int64_t n = uni(0, 6); n > 0; --n) prompt.push_back(static_cast<int32_t>(uni(0, 9)));
      if (prompt.empty()) prompt.push_back(1);
      add(next_id++, std::move(prompt));
    } else {
      auto it = live.begin();
      std::advance(it, uni(0, static_cast<int64_t>(live.size()) - 1));
      const uint64_t id = it->first;
      Live& s = it->second;
      const int64_t len = m.NumTokens(id);
      if (r < 75) {
        // Extend: rest of the prompt in chunks, or decode.
        const int64_t prompt_left = static_cast<int64_t>(s.tokens.size()) - len;
        const int64_t n =
            prompt_left > 0 ? std::min<int64_t>(prompt_left, uni(1, 3 * B)) : uni(1, 2);
        const bool can = m.CanAllocate(id, n);
        const absl::Status st = m.Allocate(id, n);
        if (can) {
          ASSERT_TRUE(st.ok()) << st;
          while (static_cast<int64_t>(s.tokens.size()) < len + n) {
            s.tokens.push_back(static_cast<int32_t>(uni(0, 3)));
          }
          write_shadow(id, s, len);
          if (uni(0, 3) != 0) {  // sometimes commit late
            ASSERT_TRUE(
                m.CommitFullBlocks(id, absl::Span<const int32_t>(s.tokens.data(), len + n)).ok());
          }
        } else {
          ASSERT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
          ASSERT_EQ(m.NumTokens(id), len);
          ++exhausted;
        }
      } else if (r < 90) {
        ASSERT_TRUE(m.Free(id).ok());
        live.erase(it);
      } else {
        // Preempt and re-admit for recompute: the computed tokens become the prompt.
        std::vector<int32_t> prompt(s.tokens.begin(), s.tokens.begin() + len);
        ASSERT_TRUE(m.Free(id).ok());
        live.erase(it);
        if (prompt.empty()) prompt.push_back(1);
        add(next_id++, std::move(prompt));
      }
    }
    // Invariants after every operation.
    const absl::Status v = m.Validate();
    ASSERT_TRUE(v.ok()) << "op " << op << ": " << v;
    for (KvPool p : {KvPool::kGlobal, KvPool::kSliding}) {
      const PoolUsage u = m.Usage(p);
      ASSERT_EQ(u.free + u.cached + u.used, u.total);
    }
    for (auto& [id, s] : live) {
      s.mirror.Apply(m.TakeDelta(id));
      auto t = m.Tables(id);
      ASSERT_EQ(s.mirror.global, std::vector<PageId>(t->global.begin(), t->global.end()));
      ASSERT_EQ(s.mirror.sliding_first_block, t->sliding_first_block);
      ASSERT_EQ(s.mirror.sliding, std::vector<PageId>(t->sliding.begin(), t->sliding.end()));
    }
  }
  // Everything freed: no leak.
  for (const auto& [id, s] : live) ASSERT_TRUE(m.Free(id).ok());
  ASSERT_TRUE(m.Validate().ok());
  for (KvPool p : {KvPool::kGlobal, KvPool::kSliding}) {
    const PoolUsage u = m.Usage(p);
    EXPECT_EQ(u.used, 0);
    EXPECT_EQ(u.free + u.cached, u.total);
    if (!prm.prefix_caching) {
      EXPECT_EQ(u.cached, 0);
    }
  }
  // The run exercised what it claims to.
  EXPECT_GT(adds, 100);
  EXPECT_GT(exhausted, 0);
  if (prm.prefix_caching) {
    EXPECT_GT(hits, 10);
    EXPECT_GT(m.Usage(KvPool::kGlobal).evictions, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Seeds, KvBlockManagerRandomTest,
    ::testing::Values(Params{4, 10, 120, 40, true, 1}, Params{4, 10, 120, 40, true, 2},
                      Params{3, 5, 90, 30, true, 3}, Params{4, 1, 50, 12, true, 4},
                      Params{16, 64, 16, 14, true, 5}, Params{4, 10, 120, 40, false, 6},
                      Params{4, 8, 60, 60, true, 7}));

}  // namespace
}  // namespace g4
