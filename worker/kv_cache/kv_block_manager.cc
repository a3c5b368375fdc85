#include "worker/kv_cache/kv_block_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace g4 {

namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

inline uint64_t Mix64(uint64_t x) {  // splitmix64 finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

void BlockTableMirror::Apply(const BlockTableDelta& delta) {
  global.insert(global.end(), delta.global_append.begin(), delta.global_append.end());
  const int64_t drop = delta.sliding_first_block - sliding_first_block;
  if (drop >= static_cast<int64_t>(sliding.size())) {
    sliding.clear();
  } else if (drop > 0) {
    sliding.erase(sliding.begin(), sliding.begin() + drop);
  }
  sliding_first_block = delta.sliding_first_block;
  sliding.insert(sliding.end(), delta.sliding_append.begin(), delta.sliding_append.end());
}

uint64_t KvBlockManager::HashBlock(uint64_t parent, absl::Span<const int32_t> tokens) {
  uint64_t h = Mix64(parent ^ 0x9e3779b97f4a7c15ULL);
  for (int32_t t : tokens) {
    h = Mix64(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x632be59bd9b4e019ULL));
  }
  return h == 0 ? 1 : h;  // 0 is the seed ("no parent")
}

absl::StatusOr<std::unique_ptr<KvBlockManager>> KvBlockManager::Create(
    const KvBlockManagerOptions& o) {
  if (o.block_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat("block_size must be >= 1, got ", o.block_size));
  }
  constexpr int64_t kMaxPages = (int64_t{1} << 31) - 2;
  if (o.num_global_pages < 0 || o.num_global_pages > kMaxPages || o.num_sliding_pages < 0 ||
      o.num_sliding_pages > kMaxPages) {
    return absl::InvalidArgumentError(absl::StrCat("page counts out of range: global ",
                                                   o.num_global_pages, ", sliding ",
                                                   o.num_sliding_pages));
  }
  if (o.num_global_pages == 0 && o.num_sliding_pages == 0) {
    return absl::InvalidArgumentError("both KV pools are empty");
  }
  if (o.num_sliding_pages > 0 && o.sliding_window < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("sliding pool needs sliding_window >= 1, got ", o.sliding_window));
  }
  return std::unique_ptr<KvBlockManager>(new KvBlockManager(o));
}

KvBlockManager::KvBlockManager(const KvBlockManagerOptions& options) : options_(options) {
  if (options_.num_global_pages > 0) {
    pools_[0] = std::make_unique<BlockPool>(options_.num_global_pages, options_.block_size);
  }
  if (options_.num_sliding_pages > 0) {
    pools_[1] = std::make_unique<BlockPool>(options_.num_sliding_pages, options_.block_size);
  } else {
    options_.sliding_window = 0;
  }
}

int64_t KvBlockManager::WindowFirstBlock(int64_t pos) const {
  return std::max<int64_t>(0, pos - options_.sliding_window + 1) / options_.block_size;
}

void KvBlockManager::MatchInternal(absl::Span<const int32_t> tokens, Match* out) const {
  *out = Match();
  const int B = options_.block_size;
  if (!options_.enable_prefix_caching || tokens.size() <= 1) return;
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / B;
  std::vector<uint64_t> hashes;
  std::vector<PageId> gpages, spages;
  uint64_t parent = 0;
  for (int64_t b = 0; b < max_blocks; ++b) {
    auto blk = tokens.subspan(b * B, B);
    const uint64_t h = HashBlock(parent, blk);
    PageId g = kNoPage;
    if (global() != nullptr) {
      g = global()->Lookup(h, parent, blk);
      if (g == kNoPage) break;
    }
    PageId s = kNoPage;
    if (sliding() != nullptr) s = sliding()->Lookup(h, parent, blk);
    hashes.push_back(h);
    gpages.push_back(g);
    spages.push_back(s);
    parent = h;
  }
  const int64_t g = static_cast<int64_t>(hashes.size());
  int64_t j = g;
  if (sliding() != nullptr) {
    // run[b]: consecutive sliding hits ending at block b.
    std::vector<int64_t> run(g);
    for (int64_t b = 0; b < g; ++b) {
      run[b] = spages[b] == kNoPage ? 0 : (b > 0 ? run[b - 1] : 0) + 1;
    }
    for (; j > 0; --j) {
      if (run[j - 1] >= j - WindowFirstBlock(j * B)) break;
    }
  }
  if (j == 0) return;
  out->blocks = j;
  out->last_hash = hashes[j - 1];
  if (global() != nullptr) out->global.assign(gpages.begin(), gpages.begin() + j);
  if (sliding() != nullptr) {
    out->sliding_first = WindowFirstBlock(j * B);
    out->sliding.assign(spages.begin() + out->sliding_first, spages.begin() + j);
  }
}

int64_t KvBlockManager::MatchPrefix(absl::Span<const int32_t> tokens) const {
  Match m;
  MatchInternal(tokens, &m);
  return m.blocks * options_.block_size;
}

absl::StatusOr<int64_t> KvBlockManager::AddSequence(uint64_t seq_id,
                                                    absl::Span<const int32_t> prompt) {
  if (seqs_.contains(seq_id)) {
    return absl::AlreadyExistsError(absl::StrCat("KV sequence ", seq_id, " already exists"));
  }
  Match m;
  MatchInternal(prompt, &m);
  Seq& s = seqs_[seq_id];
  s.num_tokens = m.blocks * options_.block_size;
  s.num_hashed_blocks = m.blocks;
  s.last_hash = m.last_hash;
  for (PageId p : m.global) global()->Acquire(p);
  for (PageId p : m.sliding) sliding()->Acquire(p);
  s.global = std::move(m.global);
  s.sliding_first = m.sliding_first;
  s.sliding = std::move(m.sliding);
  if (options_.enable_prefix_caching) {
    prefix_stats_.queried_tokens += static_cast<int64_t>(prompt.size());
    prefix_stats_.hit_tokens += s.num_tokens;
  }
  return s.num_tokens;
}

int64_t KvBlockManager::SlidingReleasable(const Seq& s) const {
  if (sliding() == nullptr) return 0;
  const int64_t r = WindowFirstBlock(s.num_tokens) - s.sliding_first;
  return std::clamp<int64_t>(r, 0, static_cast<int64_t>(s.sliding.size()));
}

KvBlockManager::PagesNeeded KvBlockManager::NeededFor(uint64_t seq_id,
                                                      int64_t num_new_tokens) const {
  PagesNeeded need;
  auto it = seqs_.find(seq_id);
  const Seq* s = it == seqs_.end() ? nullptr : &it->second;
  const int64_t len = s == nullptr ? 0 : s->num_tokens;
  const int64_t end_block =
      CeilDiv(len + std::max<int64_t>(num_new_tokens, 0), options_.block_size);
  const int64_t have_block = CeilDiv(len, options_.block_size);
  if (global() != nullptr) need.global = end_block - have_block;
  if (sliding() != nullptr) {
    int64_t returned = 0;
    if (s != nullptr) {
      const int64_t r = SlidingReleasable(*s);
      for (int64_t i = 0; i < r; ++i) returned += sliding()->refcount(s->sliding[i]) == 1;
    }
    need.sliding = end_block - have_block - returned;
  }
  return need;
}

bool KvBlockManager::CanAllocate(uint64_t seq_id, int64_t num_new_tokens) const {
  const PagesNeeded need = NeededFor(seq_id, num_new_tokens);
  return (global() == nullptr || need.global <= global()->available()) &&
         (sliding() == nullptr || need.sliding <= sliding()->available());
}

absl::Status KvBlockManager::Allocate(uint64_t seq_id, int64_t num_new_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) {
    return absl::NotFoundError(absl::StrCat("KV sequence ", seq_id, " not found"));
  }
  if (num_new_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_new_tokens < 0: ", num_new_tokens));
  }
  if (!CanAllocate(seq_id, num_new_tokens)) {
    const PagesNeeded need = NeededFor(seq_id, num_new_tokens);
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache full: sequence ", seq_id, " needs ", need.global, " global / ",
                     need.sliding, " sliding pages, available ", Usage(KvPool::kGlobal).available(),
                     " / ", Usage(KvPool::kSliding).available()));
  }
  Seq& s = it->second;
  const int B = options_.block_size;
  const int64_t end_block = CeilDiv(s.num_tokens + num_new_tokens, B);
  if (global() != nullptr) {
    while (static_cast<int64_t>(s.global.size()) < end_block) {
      const PageId p = global()->Allocate();
      G4_CHECK(p != kNoPage);
      s.global.push_back(p);
    }
  }
  if (sliding() != nullptr) {
    const int64_t r = SlidingReleasable(s);
    for (int64_t i = 0; i < r; ++i) sliding()->Release(s.sliding[i]);
    s.sliding.erase(s.sliding.begin(), s.sliding.begin() + r);
    s.sliding_first += r;
    while (s.sliding_first + static_cast<int64_t>(s.sliding.size()) < end_block) {
      const PageId p = sliding()->Allocate();
      G4_CHECK(p != kNoPage);
      s.sliding.push_back(p);
    }
  }
  s.num_tokens += num_new_tokens;
  return absl::OkStatus();
}

absl::Status KvBlockManager::CommitFullBlocks(uint64_t seq_id,
                                              absl::Span<const int32_t> computed_tokens) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) {
    return absl::NotFoundError(absl::StrCat("KV sequence ", seq_id, " not found"));
  }
  Seq& s = it->second;
  const int64_t k = static_cast<int64_t>(computed_tokens.size());
  if (k > s.num_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CommitFullBlocks: ", k, " computed tokens but only ", s.num_tokens, " slots allocated"));
  }
  if (!options_.enable_prefix_caching) return absl::OkStatus();
  const int B = options_.block_size;
  const int64_t full = k / B;
  for (int64_t b = s.num_hashed_blocks; b < full; ++b) {
    auto blk = computed_tokens.subspan(b * B, B);
    const uint64_t h = HashBlock(s.last_hash, blk);
    if (global() != nullptr) global()->Register(s.global[b], h, s.last_hash, blk);
    if (sliding() != nullptr && b >= s.sliding_first &&
        b < s.sliding_first + static_cast<int64_t>(s.sliding.size())) {
      sliding()->Register(s.sliding[b - s.sliding_first], h, s.last_hash, blk);
    }
    s.last_hash = h;
    s.num_hashed_blocks = b + 1;
  }
  return absl::OkStatus();
}

absl::Status KvBlockManager::Free(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) {
    return absl::NotFoundError(absl::StrCat("KV sequence ", seq_id, " not found"));
  }
  Seq& s = it->second;
  for (auto p = s.sliding.rbegin(); p != s.sliding.rend(); ++p) sliding()->Release(*p);
  for (auto p = s.global.rbegin(); p != s.global.rend(); ++p) global()->Release(*p);
  seqs_.erase(it);
  return absl::OkStatus();
}

int64_t KvBlockManager::NumTokens(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? -1 : it->second.num_tokens;
}

std::optional<BlockTableView> KvBlockManager::Tables(uint64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return std::nullopt;
  const Seq& s = it->second;
  BlockTableView v;
  v.num_tokens = s.num_tokens;
  v.global = s.global;
  v.sliding_first_block = s.sliding_first;
  v.sliding = s.sliding;
  return v;
}

BlockTableDelta KvBlockManager::TakeDelta(uint64_t seq_id) {
  BlockTableDelta d;
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return d;
  Seq& s = it->second;
  d.global_append.assign(s.global.begin() + s.global_sent, s.global.end());
  s.global_sent = s.global.size();
  const int64_t end = s.sliding_first + static_cast<int64_t>(s.sliding.size());
  const int64_t start = std::max(s.sliding_sent_end, s.sliding_first);
  d.sliding_first_block = s.sliding_first;
  if (start < end) {
    d.sliding_append.assign(s.sliding.begin() + (start - s.sliding_first), s.sliding.end());
  }
  s.sliding_sent_end = end;
  return d;
}

PoolUsage KvBlockManager::Usage(KvPool pool) const {
  const BlockPool* p = pools_[Index(pool)].get();
  return p == nullptr ? PoolUsage{} : p->Usage();
}

absl::Status KvBlockManager::Validate() const {
  const int B = options_.block_size;
  std::vector<int32_t> refs[kNumKvPools];
  for (int i = 0; i < kNumKvPools; ++i) {
    if (pools_[i] == nullptr) continue;
    absl::Status st = pools_[i]->Validate();
    if (!st.ok()) {
      return absl::InternalError(
          absl::StrCat(KvPoolName(static_cast<KvPool>(i)), " pool: ", st.message()));
    }
    refs[i].assign(pools_[i]->num_pages(), 0);
  }
  for (const auto& [id, s] : seqs_) {
    const int64_t blocks = CeilDiv(s.num_tokens, B);
    if (global() != nullptr) {
      if (static_cast<int64_t>(s.global.size()) != blocks) {
        return absl::InternalError(absl::StrCat("seq ", id, ": ", s.global.size(),
                                                " global pages for ", blocks, " blocks"));
      }
      for (PageId p : s.global) ++refs[0][p];
    }
    if (sliding() != nullptr) {
      if (s.sliding_first + static_cast<int64_t>(s.sliding.size()) != blocks) {
        return absl::InternalError(absl::StrCat("seq ", id, ": sliding ring [", s.sliding_first,
                                                ", +", s.sliding.size(), ") for ", blocks,
                                                " blocks"));
      }
      if (s.sliding_first > WindowFirstBlock(s.num_tokens)) {
        return absl::InternalError(absl::StrCat("seq ", id, ": window block dropped early"));
      }
      for (PageId p : s.sliding) ++refs[1][p];
    }
    if (s.num_hashed_blocks > s.num_tokens / B) {
      return absl::InternalError(absl::StrCat("seq ", id, ": hashed a partial block"));
    }
  }
  for (int i = 0; i < kNumKvPools; ++i) {
    if (pools_[i] == nullptr) continue;
    for (PageId p = 0; p < pools_[i]->num_pages(); ++p) {
      if (pools_[i]->refcount(p) != refs[i][p]) {
        return absl::InternalError(absl::StrCat(KvPoolName(static_cast<KvPool>(i)), " page ", p,
                                                ": refcount ", pools_[i]->refcount(p), ", ",
                                                refs[i][p], " table references"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace g4
