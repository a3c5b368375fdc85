// Paged KV storage of one rank (the data behind worker/kv_cache's block tables).
//
// Two pools, each with its own page shape (no padding of the head_dim-256 sliding pages to the
// head_dim-512 global size): per pool one K and one V buffer of `num_pages` pages laid out
//   [page][token in block][layer of that pool][local kv head][head_dim]   (fp32 on CPU)
// with the rank's local KV heads (ShardLayout). A pool whose layers derive K from V
// (KeysDerivedFromValues: the global pool of k_eq_v models) has no K buffer. KV-shared layers
// own nothing and read their donor layer's pages. Page ids come from the leader's KvBlockManager; every rank holds the same
// page ids in lockstep through the BlockTableDelta of each step (BlockTableMirror).
//
// A PagedSequenceKv is one sequence's KvCacheView over the storage: it writes new K/V into the
// slots its block table names and reads the keys a chunk can see by gathering them through the
// block table into a contiguous scratch buffer, which Ops::Attention then consumes (a native
// paged kernel can replace the gather later without changing the tables). For a V-only pool
// Read gathers V alone and returns k = nullptr.
//
// Thread-compatible: one runner thread drives a storage and its sequences.
#ifndef G4SERVE_WORKER_MODEL_PAGED_KV_CACHE_H_
#define G4SERVE_WORKER_MODEL_PAGED_KV_CACHE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "worker/kv_cache/kv_block_manager.h"
#include "worker/kv_cache/kv_geometry.h"
#include "worker/model/kv_cache.h"

namespace g4 {

struct PagedKvOptions {
  int block_size = 16;
  int64_t num_global_pages = 0;
  int64_t num_sliding_pages = 0;
  bool operator==(const PagedKvOptions&) const = default;
};

class PagedSequenceKv;

class PagedKvStorage {
 public:
  // `kv_heads[layer]`: this rank's KV heads of each layer. Fails if the layers of one kind
  // disagree on heads or head_dim, or if a pool the model uses has no pages.
  static absl::StatusOr<std::unique_ptr<PagedKvStorage>> Create(const ModelConfig& config,
                                                                 const std::vector<int>& kv_heads,
                                                                 const PagedKvOptions& options);
  PagedKvStorage(const PagedKvStorage&) = delete;
  PagedKvStorage& operator=(const PagedKvStorage&) = delete;

  const ModelConfig& config() const { return config_; }
  const PagedKvOptions& options() const { return options_; }
  int block_size() const { return options_.block_size; }

  // A new sequence with `length` tokens already in its pages (a cached prefix adopted by the
  // leader; 0 otherwise) and an empty table: apply the step's deltas to table() before use.
  std::unique_ptr<PagedSequenceKv> NewSequence(int64_t length);

  // Floats held by both pools (K and V; V alone in a V-only pool).
  int64_t AllocatedFloats() const;

 private:
  friend class PagedSequenceKv;
  struct Pool {
    int num_layers = 0;
    int64_t row_width = 0;  // local kv heads · head_dim
    int64_t num_pages = 0;
    bool v_only = false;  // K derived from V: `k` stays empty
    std::vector<float> k, v;
  };
  PagedKvStorage(const ModelConfig& config, const PagedKvOptions& options);

  // Row of (page, slot, layer index within the pool).
  float* Row(std::vector<float>& buf, const Pool& p, PageId page, int64_t slot, int li) const {
    const int64_t row = (static_cast<int64_t>(page) * options_.block_size + slot) * p.num_layers + li;
    return buf.data() + row * p.row_width;
  }

  const ModelConfig& config_;
  const PagedKvOptions options_;
  Pool pools_[kNumKvPools];
  std::vector<int> layer_index_;   // index of an owning layer within its pool; -1 if shared
  std::vector<float> k_scratch_, v_scratch_;  // Read() gathers here
};

class PagedSequenceKv : public KvCacheView {
 public:
  PagedSequenceKv(PagedKvStorage* storage, int64_t length) : s_(storage), length_(length) {}

  BlockTableMirror& table() { return table_; }
  const BlockTableMirror& table() const { return table_; }

  int64_t length() const override { return length_; }
  // FailedPrecondition unless the table has slots for positions [length, length + n) and, on
  // sliding layers, for the window of the first new query.
  absl::Status CanReserve(int64_t n) const override;
  void Reserve(int64_t n) override;
  void Write(int layer, const float* k, const float* v) override;
  Keys Read(int layer) override;
  void Commit(int64_t n) override;

 private:
  // Page of logical block `block` in `pool`.
  PageId PageOf(KvPool pool, int64_t block) const {
    return pool == KvPool::kGlobal ? table_.global[block]
                                   : table_.sliding[block - table_.sliding_first_block];
  }
  // First position a sliding-layer query at `pos` can see.
  int64_t WindowStart(int64_t pos) const;

  PagedKvStorage* s_;
  BlockTableMirror table_;
  int64_t length_ = 0;
  int64_t reserved_ = 0;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_MODEL_PAGED_KV_CACHE_H_
