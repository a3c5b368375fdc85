// The two KV page shapes of a Gemma 4 model and their sizes in bytes.
//
// Gemma 4 interleaves sliding-window layers (head_dim 256, many KV heads) with global layers
// (head_dim 512, few KV heads). The paged cache keeps one pool per kind, each with its own page
// shape, so neither is padded to the other's size. A page holds `block_size` consecutive token
// positions for every KV-owning layer of its kind:
//   page[token in block][layer of the pool][kv head][head_dim], separately for K and V,
// or for V alone on the global layers of attention_k_eq_v models (31B, 26B-A4B), where
// attention derives K from V (KeysDerivedFromValues; docs/kv_cache.md). KV-shared layers
// (E2B/E4B) own no cache and are not counted.
#ifndef G4SERVE_WORKER_KV_CACHE_KV_GEOMETRY_H_
#define G4SERVE_WORKER_KV_CACHE_KV_GEOMETRY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace g4 {

enum class KvPool : uint8_t { kGlobal = 0, kSliding = 1 };
inline constexpr int kNumKvPools = 2;
const char* KvPoolName(KvPool pool);

// Whether layer `layer`'s cache holds V only, K being derived from V where attention reads it:
// the global layers of attention_k_eq_v models, whose K and V come from the same raw k_proj
// output r (V = RmsNorm(r), K = RoPE_p(V ⊙ k_norm)). For a KV-shared layer ask its donor.
inline bool KeysDerivedFromValues(const ModelConfig& config, int layer) {
  return !config.HasVProj(layer);
}

struct KvPageShape {
  int block_size = 0;  // tokens per page
  int num_layers = 0;  // KV-owning layers of this kind (0: the pool is unused)
  int num_kv_heads = 0;
  int head_dim = 0;
  int dtype_bytes = 2;  // bf16
  int tensors = 2;      // cached tensors: 2 (K and V), or 1 (V only, K derived from V)

  // The cached tensors for every token, layer and head of the page.
  int64_t BytesPerPage() const { return block_size * BytesPerToken(); }
  int64_t BytesPerToken() const {
    return int64_t{tensors} * num_layers * num_kv_heads * head_dim * dtype_bytes;
  }
};

struct KvGeometry {
  KvPageShape global;
  KvPageShape sliding;
  int sliding_window = 0;  // W: a query at position p sees keys p-W+1..p on sliding layers

  const KvPageShape& shape(KvPool pool) const { return pool == KvPool::kGlobal ? global : sliding; }
  // Pages a sequence of `num_tokens` tokens holds in each pool while decoding (window bound for
  // the sliding pool: the W positions p-W+1..p can straddle one more block than W/block_size).
  int64_t GlobalPagesFor(int64_t num_tokens) const;
  int64_t SlidingPagesFor(int64_t num_tokens) const;
  // Bytes of KV a `num_tokens`-token sequence holds (both pools, whole pages).
  int64_t BytesFor(int64_t num_tokens) const;
  std::string DebugString() const;
};

// Derives both page shapes from a validated config. Fails if the layers of one kind disagree on
// KV heads, head_dim or cached tensors (no released Gemma 4 model does), or if block_size /
// dtype_bytes < 1.
absl::StatusOr<KvGeometry> KvGeometryFromConfig(const ModelConfig& config, int block_size,
                                                int dtype_bytes = 2);

}  // namespace g4

#endif  // G4SERVE_WORKER_KV_CACHE_KV_GEOMETRY_H_
