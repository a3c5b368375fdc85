// Per-sequence KV cache for the CPU reference engine.
//
// Each layer that computes K/V owns a contiguous buffer of rows [num_kv_heads · head_dim] for K
// and for V, holding consecutive positions pos0, pos0 + 1, ... Layers whose K is derived from V
// (KeysDerivedFromValues: k_eq_v global layers) hold V only. Global layers keep every position.
// Sliding layers keep only what future queries can still see (the last window − 1 positions)
// and drop older rows when the buffer would overflow, so their memory stays O(window + chunk).
// KV-shared layers (E2B/E4B) own nothing and read their donor layer's buffer.
//
// A forward step first Reserve()s room for its new tokens, writes them with Rows(), attends over
// the layer's rows including the new ones, and finally Commit()s. Nothing is dropped between
// Reserve and Commit, so a shared layer later in the same step sees what its donor saw.
// The serving engine's paged KV (worker/model/paged_kv_cache.h, block tables from
// worker/kv_cache) implements the same KvCacheView, so Gemma4Model::Forward serves either.
//
// Not thread-safe: one sequence is driven by one thread.
#ifndef G4SERVE_WORKER_MODEL_KV_CACHE_H_
#define G4SERVE_WORKER_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "common/model_config.h"

namespace g4 {

// What the model needs from one sequence's KV, contiguous or paged. One step:
//   CanReserve(n) (validation, nothing changed) → Reserve(n) → per layer Write() the new K/V of
//   an owning layer, Read() the keys a layer attends over (the donor's for a KV-shared layer)
//   → Commit(n).
class KvCacheView {
 public:
  virtual ~KvCacheView() = default;

  // Tokens committed so far; the next token goes to this position.
  virtual int64_t length() const = 0;
  // OK if Reserve(n) can be served (the paged cache checks its block table covers the slots).
  virtual absl::Status CanReserve(int64_t n) const = 0;
  virtual void Reserve(int64_t n) = 0;
  // Stores the reserved tokens' K and V rows of KV-owning layer `layer`: `k` and `v` hold
  // n rows of row_width (= local kv heads · head_dim) floats, densely packed. `k` is null, and
  // must be, for a layer that caches V only (KeysDerivedFromValues).
  virtual void Write(int layer, const float* k, const float* v) = 0;
  // Keys and values layer `layer` attends over, committed plus reserved, as consecutive rows of
  // positions pos0, pos0 + 1, ... Valid until the next Read/Reserve on any view of the same
  // storage. Includes at least every key a reserved query can see. `k` is null when the layer
  // (or its donor) caches V only: attention derives K from V (AttentionShape::k_derive).
  struct Keys {
    const float* k = nullptr;
    const float* v = nullptr;
    int64_t pos0 = 0;
    int64_t rows = 0;
    int64_t row_width = 0;
  };
  virtual Keys Read(int layer) = 0;
  // Advances length() by the `n` tokens reserved.
  virtual void Commit(int64_t n) = 0;
};

class SequenceKvCache : public KvCacheView {
 public:
  explicit SequenceKvCache(const ModelConfig& config);
  // A rank of a sharded replica holds only `kv_heads[layer]` KV heads of each layer.
  SequenceKvCache(const ModelConfig& config, const std::vector<int>& kv_heads);

  // Tokens committed so far; the next token goes to this position.
  int64_t length() const override { return length_; }

  absl::Status CanReserve(int64_t) const override { return absl::OkStatus(); }
  // Makes room for `n` new tokens at positions [length(), length() + n) in every owning layer.
  void Reserve(int64_t n) override;
  void Write(int layer, const float* k, const float* v) override;
  Keys Read(int layer) override;

  // The rows of layer `layer`'s K and V buffers (its donor's for a shared layer); k is null for
  // a V-only layer.
  struct LayerRows {
    float* k = nullptr;
    float* v = nullptr;
    int64_t pos0 = 0;      // position of row 0
    int64_t rows = 0;      // committed rows + reserved new rows
    int64_t row_width = 0; // num_kv_heads · head_dim floats
  };
  LayerRows Rows(int layer);

  // Advances length() by the `n` tokens reserved.
  void Commit(int64_t n) override;

  // Floats held across all layers (K and V; V alone on V-only layers), for tests and accounting.
  int64_t AllocatedFloats() const;

 private:
  struct LayerKv {
    bool sliding = false;
    bool v_only = false;  // K derived from V: `k` stays empty
    int64_t row_width = 0;
    int64_t pos0 = 0;
    int64_t rows = 0;  // committed
    std::vector<float> k, v;
  };

  const ModelConfig& config_;
  int64_t length_ = 0;
  int64_t reserved_ = 0;
  std::vector<LayerKv> layers_;  // indexed by layer; empty for KV-shared layers
};

}  // namespace g4

#endif  // G4SERVE_WORKER_MODEL_KV_CACHE_H_
