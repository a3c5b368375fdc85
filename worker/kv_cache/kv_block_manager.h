// Paged KV-cache bookkeeping for Gemma 4's two layer kinds (see docs/kv_cache.md).
//
// Two BlockPools with their own page shapes (KvGeometry):
//   global   keeps every position: block b of a sequence (positions [b*B, (b+1)*B)) stays in
//            its block table until the sequence is freed.
//   sliding  keeps only the window: a chunk whose first query is at position L needs keys from
//            L-W+1 on, so Allocate() first releases the sequence's blocks that end before
//            L-W+1, then appends pages for the new positions. The live pages form a contiguous
//            run of logical blocks [sliding_first_block, sliding_first_block + size).
//
// Prefix caching: full blocks are hashed as a chain, h_b = Hash(h_{b-1}, tokens of block b),
// and registered in both pools once computed (CommitFullBlocks). A new sequence reuses a
// prefix of P tokens (P a multiple of B, P < prompt length) only if
//   - the global pool holds blocks [0, P/B), and
//   - the sliding pool holds blocks [max(0, P-W+1)/B, P/B): the window the first recomputed
//     query at position P attends over.
// MatchPrefix returns the largest such P. Shared pages are refcounted; released registered
// pages stay cached (LRU, evictable) until their page is needed.
//
// Step protocol for the engine (leader):
//   AddSequence(id, prompt)            -> cached tokens P; start computing at position P
//   CanAllocate / Allocate(id, n)      before each step that feeds n tokens
//   TakeDelta(id)                      block-table changes to ship in the step descriptor
//   CommitFullBlocks(id, computed)     after the step wrote the KV of `computed` tokens
//   Free(id)                           on finish, abort or preemption (recompute later)
//
// Not thread-safe: owned by the engine thread. Publish Usage() snapshots to metrics.
#ifndef G4SERVE_WORKER_KV_CACHE_KV_BLOCK_MANAGER_H_
#define G4SERVE_WORKER_KV_CACHE_KV_BLOCK_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/kv_cache/block_pool.h"
#include "worker/kv_cache/kv_geometry.h"

namespace g4 {

struct KvBlockManagerOptions {
  int block_size = 16;            // tokens per page (both pools)
  int64_t num_global_pages = 0;   // 0 with no global layers
  int64_t num_sliding_pages = 0;  // 0 with no sliding layers (then sliding_window is ignored)
  int sliding_window = 0;         // W; required >= 1 when num_sliding_pages > 0
  bool enable_prefix_caching = true;
};

// Block-table changes of one sequence since its previous TakeDelta: what the step descriptor
// carries so that ranks keep persistent tables without resending 256K-token tables each step.
struct BlockTableDelta {
  std::vector<PageId> global_append;   // pages for the next global logical blocks
  int64_t sliding_first_block = 0;     // drop mirrored sliding blocks below this one
  std::vector<PageId> sliding_append;  // pages for the next sliding logical blocks
  bool empty() const { return global_append.empty() && sliding_append.empty(); }
};

// A rank's copy of one sequence's tables, rebuilt from deltas (also used by the tests).
struct BlockTableMirror {
  std::vector<PageId> global;
  int64_t sliding_first_block = 0;
  std::vector<PageId> sliding;
  void Apply(const BlockTableDelta& delta);
};

// One sequence's tables. Spans stay valid until the next mutating call on the manager.
struct BlockTableView {
  int64_t num_tokens = 0;            // positions [0, num_tokens) have slots
  absl::Span<const PageId> global;   // global[b]: page of positions [b*B, (b+1)*B)
  int64_t sliding_first_block = 0;   // logical block of sliding[0]
  absl::Span<const PageId> sliding;  // sliding[i]: block sliding_first_block + i
};

struct PrefixCacheStats {
  int64_t queried_tokens = 0;  // prompt tokens offered to AddSequence
  int64_t hit_tokens = 0;      // of those, reused from the cache
};

class KvBlockManager {
 public:
  static absl::StatusOr<std::unique_ptr<KvBlockManager>> Create(
      const KvBlockManagerOptions& options);
  KvBlockManager(const KvBlockManager&) = delete;
  KvBlockManager& operator=(const KvBlockManager&) = delete;

  const KvBlockManagerOptions& options() const { return options_; }
  int block_size() const { return options_.block_size; }
  bool has_pool(KvPool pool) const { return pools_[Index(pool)] != nullptr; }

  // Cached tokens a sequence with these prompt tokens could reuse now: a multiple of the block
  // size, always < tokens.size() (the last prompt token is recomputed to produce logits).
  int64_t MatchPrefix(absl::Span<const int32_t> tokens) const;

  // Registers `seq_id` and adopts the matched cached prefix (refcount++; never needs free
  // pages). Returns the number of cached tokens: the sequence holds positions [0, P) and
  // computes from P on. ALREADY_EXISTS if `seq_id` is live.
  absl::StatusOr<int64_t> AddSequence(uint64_t seq_id, absl::Span<const int32_t> prompt);

  // Whether Allocate(seq_id, num_new_tokens) would succeed now.
  bool CanAllocate(uint64_t seq_id, int64_t num_new_tokens) const;
  // Pages the next Allocate would take from each pool beyond what it releases (for admission).
  struct PagesNeeded {
    int64_t global = 0;
    int64_t sliding = 0;
  };
  PagesNeeded NeededFor(uint64_t seq_id, int64_t num_new_tokens) const;

  // Slots for positions [len, len + n): releases sliding blocks that left the window of the
  // first new query, then appends pages. All or nothing: RESOURCE_EXHAUSTED (changing nothing)
  // if a pool lacks pages; NOT_FOUND for an unknown sequence.
  absl::Status Allocate(uint64_t seq_id, int64_t num_new_tokens);

  // Registers the sequence's full blocks within `computed_tokens` (tokens[0, k) whose K/V the
  // last step wrote; k <= NumTokens) in the prefix cache. Idempotent; no-op when disabled.
  absl::Status CommitFullBlocks(uint64_t seq_id, absl::Span<const int32_t> computed_tokens);

  // Releases every page of the sequence (latest blocks first, so a shared prefix outlives its
  // tails in the LRU order) and forgets it. Used for finish, abort and preemption alike.
  absl::Status Free(uint64_t seq_id);

  bool Contains(uint64_t seq_id) const { return seqs_.contains(seq_id); }
  int64_t num_sequences() const { return static_cast<int64_t>(seqs_.size()); }
  int64_t NumTokens(uint64_t seq_id) const;  // -1 if unknown
  std::optional<BlockTableView> Tables(uint64_t seq_id) const;
  // Changes since the previous TakeDelta (or since AddSequence). Empty delta if unknown.
  BlockTableDelta TakeDelta(uint64_t seq_id);

  // Capacity per pool (all zeros for an absent pool).
  PoolUsage Usage(KvPool pool) const;
  const PrefixCacheStats& prefix_stats() const { return prefix_stats_; }

  // Checks pool invariants and that every page's refcount equals the number of block-table
  // references to it. O(pages + table entries). For tests and debug builds.
  absl::Status Validate() const;

  // The chain hash of a full block (stable across processes; seed 0 for block 0).
  static uint64_t HashBlock(uint64_t parent, absl::Span<const int32_t> tokens);

 private:
  struct Seq {
    int64_t num_tokens = 0;
    std::vector<PageId> global;
    int64_t sliding_first = 0;
    std::vector<PageId> sliding;
    int64_t num_hashed_blocks = 0;  // blocks whose chain hash is known
    uint64_t last_hash = 0;         // hash of block num_hashed_blocks - 1 (0 before block 0)
    size_t global_sent = 0;         // TakeDelta cursors
    int64_t sliding_sent_end = 0;
  };
  struct Match {
    int64_t blocks = 0;
    uint64_t last_hash = 0;
    std::vector<PageId> global;  // blocks [0, blocks)
    int64_t sliding_first = 0;
    std::vector<PageId> sliding;  // blocks [sliding_first, blocks)
  };

  explicit KvBlockManager(const KvBlockManagerOptions& options);
  static int Index(KvPool pool) { return static_cast<int>(pool); }
  BlockPool* global() const { return pools_[0].get(); }
  BlockPool* sliding() const { return pools_[1].get(); }
  // First block a query at position `pos` needs on sliding layers.
  int64_t WindowFirstBlock(int64_t pos) const;
  void MatchInternal(absl::Span<const int32_t> tokens, Match* out) const;
  // Sliding blocks of `s` that Allocate would release (as a count from the front).
  int64_t SlidingReleasable(const Seq& s) const;

  KvBlockManagerOptions options_;
  std::unique_ptr<BlockPool> pools_[kNumKvPools];
  absl::flat_hash_map<uint64_t, Seq> seqs_;
  PrefixCacheStats prefix_stats_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_KV_CACHE_KV_BLOCK_MANAGER_H_
