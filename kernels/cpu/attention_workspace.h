// What the CPU backend allocates for attention, as functions of the shapes, shared by the kernels
// (kernels/cpu/attention.cc, rope_table.cc), the paged KV cache's gather
// (worker/model/paged_kv_cache.cc) and the planner's workspace estimate (coordinator/planner), so
// the plan counts exactly what the worker allocates. These buffers grow with the context; bounded
// where that is cheap:
//  - prefill scores: one query block's rows × the keys; the block shrinks below kQueryBlock so
//    that it holds at most kMaxScoreFloats (16 MiB) once the context passes 32 768 keys;
//  - derived K rows (attention_k_eq_v layers): one tile of kKeyTile keys at a time;
//  - decode scores: heads × keys (small: one query);
//  - the gathered K/V rows of one layer (the paged cache's pages are not contiguous): keys × row
//    width, grown in kGatherGranuleFloats steps, freed before regrown (its contents are rewritten
//    on every read);
//  - the cos/sin table of the derived keys' RoPE: positions × 2 × rotated pairs, grown in
//    kRopeGranule positions; while it grows the old table is copied, so twice that at most.
// docs/kv_cache.md ("Workspace on the CPU backend").
#ifndef G4SERVE_KERNELS_CPU_ATTENTION_WORKSPACE_H_
#define G4SERVE_KERNELS_CPU_ATTENTION_WORKSPACE_H_

#include <algorithm>
#include <cstdint>

namespace g4::cpu {

inline constexpr int kQueryBlock = 128;
inline constexpr int64_t kMaxScoreFloats = int64_t{1} << 22;  // 16 MiB
inline constexpr int64_t kKeyTile = 4096;
inline constexpr int64_t kGatherGranuleFloats = int64_t{1} << 18;  // 1 MiB
inline constexpr int64_t kRopeGranule = 4096;                      // positions

inline int64_t RoundUp(int64_t n, int64_t granule) { return (n + granule - 1) / granule * granule; }

// Queries per block of a prefill over `num_keys` keys.
inline int QueryBlockRows(int64_t num_keys) {
  if (num_keys <= 0) return kQueryBlock;
  return static_cast<int>(std::clamp<int64_t>(kMaxScoreFloats / num_keys, 1, kQueryBlock));
}

// Floats one Attention call allocates at most (batch-invariant mode: the decode path per query).
inline int64_t AttentionScratchFloats(int64_t num_queries, int64_t num_keys, int num_heads,
                                      int head_dim, bool derived_keys, bool batch_invariant) {
  if (num_queries <= 0 || num_keys <= 0) return 0;
  if (num_queries == 1 || batch_invariant) return int64_t{num_heads} * num_keys + head_dim;
  const int64_t rows = std::min<int64_t>(num_queries, QueryBlockRows(num_keys));
  return rows * num_keys + (derived_keys ? std::min(num_keys, kKeyTile) * head_dim : 0);
}

// Floats of the paged cache's gather buffer for `rows` rows of `width` floats.
inline int64_t GatherScratchFloats(int64_t rows, int64_t width) {
  return RoundUp(rows * width, kGatherGranuleFloats);
}

// Floats of the RoPE table covering positions [0, end) with `rotated` rotated pairs, while it
// grows (old and new table).
inline int64_t RopeTablePeakFloats(int64_t end, int rotated) {
  return 2 * RoundUp(end, kRopeGranule) * 2 * rotated;
}

}  // namespace g4::cpu

#endif  // G4SERVE_KERNELS_CPU_ATTENTION_WORKSPACE_H_
