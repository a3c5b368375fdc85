#include "worker/kv_cache/block_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace g4 {

BlockPool::BlockPool(int64_t num_pages, int block_size)
    : block_size_(block_size),
      refcount_(num_pages, 0),
      has_hash_(num_pages, 0),
      hash_(num_pages, 0),
      parent_(num_pages, 0),
      tokens_(num_pages * block_size, 0),
      prev_(num_pages + 1),
      next_(num_pages + 1) {
  G4_CHECK(num_pages >= 0 && num_pages < (int64_t{1} << 31) - 1);
  G4_CHECK(block_size >= 1);
  free_.reserve(num_pages);
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<PageId>(p));
  const PageId s = static_cast<PageId>(num_pages);
  prev_[s] = next_[s] = s;
}

void BlockPool::LruPushBack(PageId page) {
  const PageId s = static_cast<PageId>(num_pages());
  const PageId last = prev_[s];
  prev_[page] = last;
  next_[page] = s;
  next_[last] = page;
  prev_[s] = page;
  ++num_cached_;
}

void BlockPool::LruRemove(PageId page) {
  next_[prev_[page]] = next_[page];
  prev_[next_[page]] = prev_[page];
  prev_[page] = next_[page] = kNoPage;
  --num_cached_;
}

void BlockPool::DropHash(PageId page) {
  auto it = index_.find(hash_[page]);
  G4_CHECK(it != index_.end() && it->second == page);
  index_.erase(it);
  has_hash_[page] = 0;
}

PageId BlockPool::Allocate() {
  PageId page;
  if (!free_.empty()) {
    page = free_.back();
    free_.pop_back();
  } else if (num_cached_ > 0) {
    page = next_[num_pages()];  // least recently released
    LruRemove(page);
    DropHash(page);
    ++evictions_;
  } else {
    return kNoPage;
  }
  G4_CHECK(refcount_[page] == 0);
  refcount_[page] = 1;
  ++num_used_;
  peak_used_ = std::max(peak_used_, num_used_);
  return page;
}

void BlockPool::Acquire(PageId page) {
  G4_CHECK(page >= 0 && page < num_pages());
  if (refcount_[page] == 0) {
    G4_CHECK_MSG(has_hash_[page], "Acquire of a free page");
    LruRemove(page);
    ++num_used_;
    peak_used_ = std::max(peak_used_, num_used_);
  }
  ++refcount_[page];
}

void BlockPool::Release(PageId page) {
  G4_CHECK(page >= 0 && page < num_pages());
  G4_CHECK_MSG(refcount_[page] > 0, "double free of a KV page");
  if (--refcount_[page] > 0) return;
  --num_used_;
  if (has_hash_[page]) {
    LruPushBack(page);
  } else {
    free_.push_back(page);
  }
}

bool BlockPool::Register(PageId page, uint64_t hash, uint64_t parent,
                         absl::Span<const int32_t> tokens) {
  G4_CHECK(page >= 0 && page < num_pages());
  G4_CHECK(refcount_[page] > 0);
  G4_CHECK(static_cast<int>(tokens.size()) == block_size_);
  if (has_hash_[page]) return false;
  if (!index_.emplace(hash, page).second) return false;
  has_hash_[page] = 1;
  hash_[page] = hash;
  parent_[page] = parent;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + int64_t{page} * block_size_);
  return true;
}

PageId BlockPool::Lookup(uint64_t hash, uint64_t parent, absl::Span<const int32_t> tokens) const {
  auto it = index_.find(hash);
  if (it == index_.end()) return kNoPage;
  const PageId page = it->second;
  if (parent_[page] != parent) return kNoPage;
  if (!std::equal(tokens.begin(), tokens.end(), tokens_.begin() + int64_t{page} * block_size_)) {
    return kNoPage;
  }
  return page;
}

PoolUsage BlockPool::Usage() const {
  PoolUsage u;
  u.total = num_pages();
  u.free = static_cast<int64_t>(free_.size());
  u.cached = num_cached_;
  u.used = num_used_;
  u.peak_used = peak_used_;
  u.evictions = evictions_;
  return u;
}

absl::Status BlockPool::Validate() const {
  const int64_t n = num_pages();
  // 0: not seen, 1: free list, 2: LRU list.
  std::vector<uint8_t> seen(n, 0);
  for (PageId p : free_) {
    if (p < 0 || p >= n) return absl::InternalError(absl::StrCat("bad free page ", p));
    if (seen[p]) return absl::InternalError(absl::StrCat("page ", p, " twice on the free list"));
    seen[p] = 1;
    if (refcount_[p] != 0 || has_hash_[p]) {
      return absl::InternalError(absl::StrCat("free page ", p, " has refcount/hash"));
    }
  }
  int64_t lru = 0;
  const PageId s = static_cast<PageId>(n);
  for (PageId p = next_[s]; p != s; p = next_[p]) {
    if (p < 0 || p >= n) return absl::InternalError(absl::StrCat("bad LRU page ", p));
    if (seen[p]) return absl::InternalError(absl::StrCat("page ", p, " free and cached"));
    seen[p] = 2;
    if (refcount_[p] != 0 || !has_hash_[p]) {
      return absl::InternalError(absl::StrCat("cached page ", p, " has refcount or no hash"));
    }
    if (++lru > n) return absl::InternalError("LRU list cycle");
  }
  if (lru != num_cached_) return absl::InternalError("num_cached mismatch");
  int64_t used = 0, hashed = 0;
  for (PageId p = 0; p < n; ++p) {
    if (refcount_[p] < 0) return absl::InternalError(absl::StrCat("negative refcount ", p));
    if (refcount_[p] > 0) ++used;
    if (refcount_[p] == 0 && !seen[p]) {
      return absl::InternalError(absl::StrCat("page ", p, " leaked: refcount 0, on no list"));
    }
    if (has_hash_[p]) {
      ++hashed;
      auto it = index_.find(hash_[p]);
      if (it == index_.end() || it->second != p) {
        return absl::InternalError(absl::StrCat("page ", p, " hash not indexed"));
      }
    }
  }
  if (used != num_used_) return absl::InternalError("num_used mismatch");
  if (hashed != static_cast<int64_t>(index_.size())) {
    return absl::InternalError("index has entries for unhashed pages");
  }
  if (static_cast<int64_t>(free_.size()) + num_cached_ + num_used_ != n) {
    return absl::InternalError("free + cached + used != total");
  }
  return absl::OkStatus();
}

}  // namespace g4
