#include "worker/kv_cache/kv_block_manager.h"

#include <memory>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"

namespace g4 {
namespace {

constexpr int kB = 4;  // tokens per page
constexpr int kW = 8;  // sliding window

std::unique_ptr<KvBlockManager> Make(int64_t global_pages, int64_t sliding_pages,
                                     bool prefix_caching = true, int window = kW) {
  KvBlockManagerOptions o;
  o.block_size = kB;
  o.num_global_pages = global_pages;
  o.num_sliding_pages = sliding_pages;
  o.sliding_window = window;
  o.enable_prefix_caching = prefix_caching;
  auto m = KvBlockManager::Create(o);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

std::vector<int32_t> Tokens(int n, int32_t base = 100) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), base);
  return t;
}

// Adds `id`, computes its whole prompt (all tokens) in one chunk and commits it.
void Prefill(KvBlockManager& m, uint64_t id, const std::vector<int32_t>& prompt) {
  auto cached = m.AddSequence(id, prompt);
  ASSERT_TRUE(cached.ok()) << cached.status();
  ASSERT_TRUE(m.Allocate(id, static_cast<int64_t>(prompt.size()) - *cached).ok());
  ASSERT_TRUE(m.CommitFullBlocks(id, prompt).ok());
}

TEST(KvBlockManagerTest, CreateValidatesOptions) {
  KvBlockManagerOptions o;
  o.block_size = 0;
  o.num_global_pages = 1;
  EXPECT_EQ(KvBlockManager::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.block_size = 16;
  o.num_global_pages = 0;
  EXPECT_FALSE(KvBlockManager::Create(o).ok());
  o.num_sliding_pages = 4;
  o.sliding_window = 0;
  EXPECT_FALSE(KvBlockManager::Create(o).ok());
}

TEST(KvBlockManagerTest, AllocationAndFreeAccounting) {
  auto m = Make(10, 10, /*prefix_caching=*/false);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  EXPECT_EQ(m->AddSequence(1, {}).status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(m->Allocate(1, 5).ok());  // 2 blocks
  EXPECT_EQ(m->NumTokens(1), 5);
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 2);
  EXPECT_EQ(m->Usage(KvPool::kSliding).used, 2);
  ASSERT_TRUE(m->Allocate(1, 3).ok());  // 8 tokens: still 2 blocks
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 2);
  ASSERT_TRUE(m->Allocate(1, 1).ok());
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 3);
  auto t = m->Tables(1);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->global.size(), 3u);
  EXPECT_EQ(t->sliding_first_block, 0);  // query at 8 needs keys 1..8: blocks 0..2
  EXPECT_EQ(t->sliding.size(), 3u);
  EXPECT_TRUE(m->Validate().ok());
  ASSERT_TRUE(m->Free(1).ok());
  EXPECT_EQ(m->Free(1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->Allocate(1, 1).code(), absl::StatusCode::kNotFound);
  for (KvPool p : {KvPool::kGlobal, KvPool::kSliding}) {
    const PoolUsage u = m->Usage(p);
    EXPECT_EQ(u.free, 10);
    EXPECT_EQ(u.used, 0);
    EXPECT_EQ(u.cached, 0);
  }
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, SlidingWindowRecyclesPagesWhileGlobalGrows) {
  auto m = Make(1000, 8, /*prefix_caching=*/false);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  BlockTableMirror mirror;
  const int64_t bound = (kW - 1 + kB - 1) / kB + 1;  // ceil((W-1)/B) + 1 during decode
  for (int64_t pos = 0; pos < 2000; ++pos) {
    ASSERT_TRUE(m->Allocate(1, 1).ok()) << pos;
    mirror.Apply(m->TakeDelta(1));
    auto t = m->Tables(1);
    ASSERT_TRUE(t.has_value());
    // The query at `pos` sees keys max(0, pos-W+1)..pos; those blocks are live.
    const int64_t first_needed = std::max<int64_t>(0, pos - kW + 1) / kB;
    EXPECT_EQ(t->sliding_first_block, first_needed);
    EXPECT_EQ(t->sliding_first_block + static_cast<int64_t>(t->sliding.size()), pos / kB + 1);
    EXPECT_LE(static_cast<int64_t>(t->sliding.size()), bound);
    EXPECT_EQ(static_cast<int64_t>(t->global.size()), pos / kB + 1);
    EXPECT_EQ(mirror.global, std::vector<PageId>(t->global.begin(), t->global.end()));
    EXPECT_EQ(mirror.sliding_first_block, t->sliding_first_block);
    EXPECT_EQ(mirror.sliding, std::vector<PageId>(t->sliding.begin(), t->sliding.end()));
  }
  EXPECT_LE(m->Usage(KvPool::kSliding).used, bound);
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 500);
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, ChunkedPrefillKeepsWindowOfFirstQuery) {
  auto m = Make(100, 100, false);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  ASSERT_TRUE(m->Allocate(1, 20).ok());  // positions 0..19, blocks 0..4
  // Next chunk starts at 20: keys from 13 on (block 3). Blocks 0..2 go.
  ASSERT_TRUE(m->Allocate(1, 10).ok());  // positions 20..29, blocks 5..7
  auto t = m->Tables(1);
  EXPECT_EQ(t->sliding_first_block, 3);
  EXPECT_EQ(t->sliding.size(), 5u);  // blocks 3..7
  EXPECT_EQ(m->Usage(KvPool::kSliding).used, 5);
  // A chunk longer than the window still gets all its blocks for the step.
  ASSERT_TRUE(m->Allocate(1, 40).ok());  // 30..69; keys from 23 (block 5)
  t = m->Tables(1);
  EXPECT_EQ(t->sliding_first_block, 5);
  EXPECT_EQ(t->sliding.size(), 13u);  // blocks 5..17
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, ExhaustionIsResourceExhaustedAndChangesNothing) {
  auto m = Make(4, 100, false);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  ASSERT_TRUE(m->AddSequence(2, {}).ok());
  ASSERT_TRUE(m->Allocate(1, 12).ok());  // 3 global pages
  EXPECT_TRUE(m->CanAllocate(2, 4));
  EXPECT_FALSE(m->CanAllocate(2, 5));
  EXPECT_EQ(m->NeededFor(2, 5).global, 2);
  const absl::Status st = m->Allocate(2, 5);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_EQ(m->NumTokens(2), 0);
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 3);
  EXPECT_TRUE(m->Validate().ok());

  // Sliding pool: pages the window releases count toward the allocation.
  auto s = Make(100, 3, false);
  ASSERT_TRUE(s->AddSequence(1, {}).ok());
  ASSERT_TRUE(s->Allocate(1, 12).ok());  // sliding blocks 0..2: pool full
  EXPECT_EQ(s->Usage(KvPool::kSliding).available(), 0);
  // The query at 12 needs keys 5..12 (blocks 1..3): block 0's page pays for block 3.
  EXPECT_EQ(s->NeededFor(1, 1).sliding, 0);
  EXPECT_TRUE(s->CanAllocate(1, 1));
  ASSERT_TRUE(s->Allocate(1, 1).ok());
  EXPECT_EQ(s->Usage(KvPool::kSliding).used, 3);
  // A 9-token chunk from 13 needs blocks 1..5 (keys from 6): two pages short.
  EXPECT_EQ(s->NeededFor(1, 9).sliding, 2);
  EXPECT_EQ(s->Allocate(1, 9).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s->NumTokens(1), 13);
  EXPECT_EQ(s->Tables(1)->sliding_first_block, 1);  // nothing released on failure
  EXPECT_TRUE(s->Validate().ok());
}

TEST(KvBlockManagerTest, PrefixHitMissAndPartial) {
  auto m = Make(100, 100);
  const std::vector<int32_t> prompt = Tokens(10);  // blocks 0, 1 full; 8..9 partial
  Prefill(*m, 1, prompt);
  EXPECT_EQ(m->MatchPrefix(prompt), 8);
  // Whole-prompt hit is capped so the last token is recomputed.
  EXPECT_EQ(m->MatchPrefix(Tokens(8)), 4);
  EXPECT_EQ(m->MatchPrefix(Tokens(9)), 8);
  // Diverging in block 1: only block 0 is reusable.
  std::vector<int32_t> other = prompt;
  other[5] = 7;
  EXPECT_EQ(m->MatchPrefix(other), 4);
  // Diverging in block 0: miss.
  other[0] = 7;
  EXPECT_EQ(m->MatchPrefix(other), 0);
  EXPECT_EQ(m->MatchPrefix({}), 0);

  auto cached = m->AddSequence(2, Tokens(12));
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, 8);
  EXPECT_EQ(m->NumTokens(2), 8);
  auto t1 = m->Tables(1), t2 = m->Tables(2);
  EXPECT_EQ(t2->global[0], t1->global[0]);
  EXPECT_EQ(t2->global[1], t1->global[1]);
  EXPECT_EQ(m->prefix_stats().hit_tokens, 8);
  EXPECT_EQ(m->prefix_stats().queried_tokens, 10 + 12);
  // The delta of an adopting sequence carries its adopted pages.
  BlockTableMirror mirror;
  mirror.Apply(m->TakeDelta(2));
  EXPECT_EQ(mirror.global.size(), 2u);
  ASSERT_TRUE(m->Allocate(2, 4).ok());
  mirror.Apply(m->TakeDelta(2));
  auto t = m->Tables(2);
  EXPECT_EQ(mirror.global, std::vector<PageId>(t->global.begin(), t->global.end()));
  EXPECT_EQ(mirror.sliding, std::vector<PageId>(t->sliding.begin(), t->sliding.end()));
  EXPECT_TRUE(m->Validate().ok());

  auto off = Make(100, 100, /*prefix_caching=*/false);
  Prefill(*off, 1, prompt);
  EXPECT_EQ(off->MatchPrefix(prompt), 0);
}

TEST(KvBlockManagerTest, RefcountSharingAndFreeingOneSharer) {
  auto m = Make(100, 100);
  Prefill(*m, 1, Tokens(9));
  Prefill(*m, 2, Tokens(9));  // adopts blocks 0, 1
  const PageId shared = m->Tables(1)->global[0];
  EXPECT_EQ(m->Tables(2)->global[0], shared);
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 4);  // 2 shared + 1 own each
  ASSERT_TRUE(m->Free(1).ok());
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 3);
  EXPECT_TRUE(m->Validate().ok());  // refcounts == table references
  ASSERT_TRUE(m->Free(2).ok());
  const PoolUsage u = m->Usage(KvPool::kGlobal);
  EXPECT_EQ(u.used, 0);
  EXPECT_EQ(u.cached, 2);  // the committed full blocks stay cached
  EXPECT_EQ(u.free, 98);
  EXPECT_EQ(m->MatchPrefix(Tokens(9)), 8);
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, SlidingPoolMustHoldTheWindowOfTheReusedPrefix) {
  auto m = Make(100, 100);
  // A 40-token sequence decoded to the end: its sliding blocks 0..6 left the window.
  const std::vector<int32_t> long_prompt = Tokens(40);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(m->Allocate(1, 1).ok());
    ASSERT_TRUE(m->CommitFullBlocks(1, absl::Span<const int32_t>(long_prompt.data(), i + 1)).ok());
  }
  // Blocks that left the window are still cached (refcount 0, registered) in the sliding pool.
  EXPECT_GT(m->Usage(KvPool::kSliding).cached, 0);
  EXPECT_EQ(m->MatchPrefix(long_prompt), 36);
  ASSERT_TRUE(m->Free(1).ok());

  // Same history with 11 sliding pages; then evict the oldest sliding blocks.
  auto m2 = Make(100, 11);
  ASSERT_TRUE(m2->AddSequence(1, {}).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(m2->Allocate(1, 1).ok());
    ASSERT_TRUE(m2->CommitFullBlocks(1, absl::Span<const int32_t>(long_prompt.data(), i + 1)).ok());
  }
  // Free releases blocks 9, 8; blocks 0..7 were released earlier, in order, as the window
  // moved. LRU: 0 1 2 3 4 5 6 7 9 8, plus one never-used free page.
  ASSERT_TRUE(m2->Free(1).ok());
  EXPECT_EQ(m2->Usage(KvPool::kSliding).cached, 10);
  EXPECT_EQ(m2->MatchPrefix(long_prompt), 36);
  // An unrelated 8-block sequence takes the free page and evicts sliding blocks 0..6. The
  // global pool still has all 10 blocks, and P=36 only needs sliding blocks 7..8 (keys 29..35).
  ASSERT_TRUE(m2->AddSequence(2, {}).ok());
  ASSERT_TRUE(m2->Allocate(2, 8 * kB).ok());
  EXPECT_EQ(m2->Usage(KvPool::kSliding).evictions, 7);
  EXPECT_EQ(m2->MatchPrefix(long_prompt), 36);
  // One more eviction (block 7) breaks the window of every P >= 8, and every smaller P needs
  // evicted blocks too: a global-only hit is not reusable.
  ASSERT_TRUE(m2->AddSequence(3, {}).ok());
  ASSERT_TRUE(m2->Allocate(3, 1).ok());
  EXPECT_EQ(m2->Usage(KvPool::kSliding).evictions, 8);
  EXPECT_EQ(m2->MatchPrefix(long_prompt), 0);
  EXPECT_TRUE(m2->Validate().ok());
}

TEST(KvBlockManagerTest, AdoptsOnlyTheWindowFromTheSlidingPool) {
  // Global keeps everything; sliding keeps only recent blocks. The rule needs only the window.
  auto m = Make(100, 100);
  const std::vector<int32_t> prompt = Tokens(33);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  for (int i = 0; i < 33; ++i) {
    ASSERT_TRUE(m->Allocate(1, 1).ok());
    ASSERT_TRUE(m->CommitFullBlocks(1, absl::Span<const int32_t>(prompt.data(), i + 1)).ok());
  }
  // Sequence 1 is live, its ring holds blocks from 6 on. P=32 needs blocks 6..7 (keys 25..31).
  EXPECT_EQ(m->MatchPrefix(prompt), 32);
  auto cached = m->AddSequence(2, prompt);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, 32);
  auto t = m->Tables(2);
  EXPECT_EQ(t->global.size(), 8u);
  EXPECT_EQ(t->sliding_first_block, 6);  // only the window is adopted
  EXPECT_EQ(t->sliding.size(), 2u);
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, EvictionIsLeastRecentlyReleasedFirstAndTailsGoFirst) {
  auto m = Make(4, 100);
  Prefill(*m, 1, Tokens(9, 100));  // blocks A0 A1 + partial
  ASSERT_TRUE(m->Free(1).ok());    // releases partial (free), A1, then A0 (A0 most recent)
  EXPECT_EQ(m->Usage(KvPool::kGlobal).cached, 2);
  EXPECT_EQ(m->Usage(KvPool::kGlobal).free, 2);
  // A new unrelated sequence needing 3 pages evicts exactly one cached page: A1 (the tail).
  ASSERT_TRUE(m->AddSequence(2, {}).ok());
  ASSERT_TRUE(m->Allocate(2, 12).ok());
  EXPECT_EQ(m->Usage(KvPool::kGlobal).evictions, 1);
  EXPECT_EQ(m->MatchPrefix(Tokens(9, 100)), 4);  // A0 survived
  ASSERT_TRUE(m->Allocate(2, 4).ok());           // evicts A0 too
  EXPECT_EQ(m->MatchPrefix(Tokens(9, 100)), 0);
  EXPECT_TRUE(m->Validate().ok());
}

TEST(KvBlockManagerTest, PreemptionFreesEverythingAndRecomputeHitsTheCache) {
  auto m = Make(8, 100);
  const std::vector<int32_t> a = Tokens(17, 100), b = Tokens(17, 500);
  Prefill(*m, 1, a);  // 5 pages
  ASSERT_TRUE(m->AddSequence(2, b).ok());
  EXPECT_FALSE(m->CanAllocate(2, 17));
  // Preempt 1 (recompute later), then 2 fits. 1's committed blocks go to the LRU cache.
  ASSERT_TRUE(m->Free(1).ok());
  EXPECT_FALSE(m->Contains(1));
  EXPECT_TRUE(m->CanAllocate(2, 17));
  ASSERT_TRUE(m->Allocate(2, 17).ok());
  ASSERT_TRUE(m->CommitFullBlocks(2, b).ok());
  ASSERT_TRUE(m->Free(2).ok());
  // Re-admitting 1: whatever survived eviction is reused.
  const int64_t p = m->MatchPrefix(a);
  EXPECT_EQ(p, 12);  // A0..A2 survived (A3 was evicted first: tails go first)
  auto cached = m->AddSequence(1, a);
  ASSERT_TRUE(cached.ok());
  EXPECT_EQ(*cached, p);
  ASSERT_TRUE(m->Allocate(1, 17 - p).ok());
  EXPECT_TRUE(m->Validate().ok());
  ASSERT_TRUE(m->Free(1).ok());
  EXPECT_EQ(m->Usage(KvPool::kGlobal).used, 0);
  EXPECT_EQ(m->Usage(KvPool::kSliding).used, 0);
}

TEST(KvBlockManagerTest, CommitRejectsMoreTokensThanSlots) {
  auto m = Make(10, 10);
  ASSERT_TRUE(m->AddSequence(1, {}).ok());
  ASSERT_TRUE(m->Allocate(1, 3).ok());
  EXPECT_EQ(m->CommitFullBlocks(1, Tokens(4)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->CommitFullBlocks(9, Tokens(1)).code(), absl::StatusCode::kNotFound);
}

TEST(KvBlockManagerTest, GlobalOnlyModel) {
  auto m = Make(10, 0);
  EXPECT_FALSE(m->has_pool(KvPool::kSliding));
  Prefill(*m, 1, Tokens(9));
  EXPECT_EQ(m->Tables(1)->sliding.size(), 0u);
  EXPECT_EQ(m->MatchPrefix(Tokens(9)), 8);
  EXPECT_EQ(m->Usage(KvPool::kSliding).total, 0);
  EXPECT_TRUE(m->Validate().ok());
}

}  // namespace
}  // namespace g4
