// Per-sequence KV cache for the CPU reference engine.
//
// Each layer that computes K/V owns a contiguous buffer of rows [num_kv_heads · head_dim] for K
// and for V, holding consecutive positions pos0, pos0 + 1, ... Global layers keep every position.
// Sliding layers keep only what future queries can still see (the last window − 1 positions)
// and drop older rows when the buffer would overflow, so their memory stays O(window + chunk).
// KV-shared layers (E2B/E4B) own nothing and read their donor layer's buffer.
//
// A forward step first Reserve()s room for its new tokens, writes them with Rows(), attends over
// the layer's rows including the new ones, and finally Commit()s. Nothing is dropped between
// Reserve and Commit, so a shared layer later in the same step sees what its donor saw.
// (The paged, block-table KV of the serving engine replaces this in worker/kv_cache.)
//
// Not thread-safe: one sequence is driven by one thread.
#ifndef G4SERVE_WORKER_MODEL_KV_CACHE_H_
#define G4SERVE_WORKER_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "common/model_config.h"

namespace g4 {

class SequenceKvCache {
 public:
  explicit SequenceKvCache(const ModelConfig& config);
  // A rank of a sharded replica holds only `kv_heads[layer]` KV heads of each layer.
  SequenceKvCache(const ModelConfig& config, const std::vector<int>& kv_heads);

  // Tokens committed so far; the next token goes to this position.
  int64_t length() const { return length_; }

  // Makes room for `n` new tokens at positions [length(), length() + n) in every owning layer.
  void Reserve(int64_t n);

  // The rows of layer `layer`'s K and V buffers (its donor's for a shared layer).
  struct LayerRows {
    float* k = nullptr;
    float* v = nullptr;
    int64_t pos0 = 0;      // position of row 0
    int64_t rows = 0;      // committed rows + reserved new rows
    int64_t row_width = 0; // num_kv_heads · head_dim floats
  };
  LayerRows Rows(int layer);

  // Advances length() by the `n` tokens reserved.
  void Commit(int64_t n);

  // Floats held across all layers (K and V), for tests and accounting.
  int64_t AllocatedFloats() const;

 private:
  struct LayerKv {
    bool sliding = false;
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
