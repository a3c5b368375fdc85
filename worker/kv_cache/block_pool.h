// One pool of fixed-size KV pages: pure CPU bookkeeping (page ids, refcounts, the prefix-cache
// index). The device or host memory behind a page id is owned elsewhere.
//
// Every page is in exactly one state:
//   free    refcount 0, no hash; on the free list.
//   cached  refcount 0, holds the KV of a full block registered under a hash; on the LRU list.
//           Evictable: counts as available, keeps its content until it is reused.
//   used    refcount >= 1 (referenced by that many sequence block tables); may carry a hash.
// Allocate() takes a free page first, else evicts the least recently released cached page.
// All operations are O(1) except Register/Lookup (O(block_size) token comparison).
//
// Not thread-safe: owned by the engine thread through KvBlockManager.
#ifndef G4SERVE_WORKER_KV_CACHE_BLOCK_POOL_H_
#define G4SERVE_WORKER_KV_CACHE_BLOCK_POOL_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace g4 {

using PageId = int32_t;
inline constexpr PageId kNoPage = -1;

struct PoolUsage {
  int64_t total = 0;
  int64_t free = 0;       // never used or content dropped
  int64_t cached = 0;     // refcount 0, holding a registered full block (evictable)
  int64_t used = 0;       // refcount >= 1
  int64_t evictions = 0;  // cached pages reused for new content since construction
  int64_t peak_used = 0;  // the most pages used at once since construction

  int64_t available() const { return free + cached; }
  // Fraction of pages that cannot be handed out now (vLLM's kv_cache_usage_perc).
  double usage() const { return total == 0 ? 0.0 : static_cast<double>(used) / total; }
};

class BlockPool {
 public:
  // `block_size` tokens per page; the token contents of registered pages are kept to verify
  // lookups (a 64-bit hash collision is then never silently wrong for one block).
  BlockPool(int64_t num_pages, int block_size);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int64_t num_pages() const { return static_cast<int64_t>(refcount_.size()); }
  int64_t available() const { return static_cast<int64_t>(free_.size()) + num_cached_; }

  // A page with refcount 1 and no hash, or kNoPage if none is available.
  PageId Allocate();
  // refcount++; a cached page becomes used (leaves the LRU list).
  void Acquire(PageId page);
  // refcount--; at 0 the page becomes cached (most recently used) if it has a hash, else free.
  void Release(PageId page);
  int32_t refcount(PageId page) const { return refcount_[page]; }
  bool has_hash(PageId page) const { return has_hash_[page] != 0; }

  // Registers a used page as holding the block `tokens` whose chain hash is `hash` (computed
  // from `parent` and `tokens`). Returns false, changing nothing, if another page already holds
  // `hash` or this page already has one.
  bool Register(PageId page, uint64_t hash, uint64_t parent, absl::Span<const int32_t> tokens);
  // The page registered under `hash` whose parent and tokens match, or kNoPage.
  PageId Lookup(uint64_t hash, uint64_t parent, absl::Span<const int32_t> tokens) const;

  PoolUsage Usage() const;
  // Checks every internal invariant (states, lists, index); O(num_pages). For tests and debug.
  absl::Status Validate() const;

 private:
  void LruPushBack(PageId page);
  void LruRemove(PageId page);
  void DropHash(PageId page);

  const int block_size_;
  std::vector<int32_t> refcount_;
  std::vector<uint8_t> has_hash_;
  std::vector<uint64_t> hash_;
  std::vector<uint64_t> parent_;
  std::vector<int32_t> tokens_;  // block_size_ per page, valid while has_hash_
  std::vector<PageId> free_;     // stack; back is handed out next
  // Intrusive doubly linked LRU list of cached pages; index num_pages() is the sentinel.
  std::vector<PageId> prev_;
  std::vector<PageId> next_;
  int64_t num_cached_ = 0;
  int64_t num_used_ = 0;
  int64_t peak_used_ = 0;
  int64_t evictions_ = 0;
  absl::flat_hash_map<uint64_t, PageId> index_;  // hash -> page
};

}  // namespace g4

#endif  // G4SERVE_WORKER_KV_CACHE_BLOCK_POOL_H_
