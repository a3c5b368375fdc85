// What Gemma 4's text decoder computes (gemma4-text.md §2), written once against the op surface
// in kernels/ops.h: dense (31B), MoE (26B-A4B) and the E2B/E4B features (per-layer embeddings,
// cross-layer KV sharing, double-wide MLP).
//
// One Forward() runs a batch of sequence chunks of different lengths: each chunk continues its
// sequence at the sequence's current length (a long prefill, one decode token, or a prefill
// chunk), all tokens go through the projections together, and attention runs per sequence.
//
// Sharded (tensor/expert parallel, shard_layout.h): every rank of a replica runs Forward() with
// the same chunks; it holds its slices of the weights and its KV heads, and combines partial
// results with the communicator: one all-reduce after attention, one after the feed-forward
// block (shared MLP and experts in one buffer), one for the embedding, an all-gather of the
// vocabulary-parallel logits. Every rank returns the full logits.
//
// Thread-compatible: Forward() mutates scratch buffers, so one caller at a time.
#ifndef G4SERVE_WORKER_MODEL_GEMMA4_MODEL_H_
#define G4SERVE_WORKER_MODEL_GEMMA4_MODEL_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/checkpoint.h"
#include "common/model_config.h"
#include "kernels/ops.h"
#include "worker/comm/communicator.h"
#include "worker/model/kv_cache.h"
#include "worker/model/paged_kv_cache.h"
#include "worker/model/shard_layout.h"
#include "worker/model/weights.h"

namespace g4 {

struct SequenceChunk {
  KvCacheView* cache = nullptr;  // contiguous (SequenceKvCache) or paged (PagedSequenceKv)
  absl::Span<const int32_t> tokens;
};

enum class LogitsFor {
  kLastToken,  // one row per chunk (generation)
  kAllTokens,  // one row per token, in batch order (scoring, tests)
};

class Gemma4Model {
 public:
  // Loads the weights of the checkpoint at `dir` (see docs/checkpoints.md) onto `ops`.
  static absl::StatusOr<std::unique_ptr<Gemma4Model>> Load(const std::string& dir,
                                                           std::unique_ptr<Ops> ops);
  // Loads this rank's shard; `comm` (not owned, must outlive the model) connects the replica's
  // ranks and has world_size ranks. `comm` may be null when world_size is 1.
  static absl::StatusOr<std::unique_ptr<Gemma4Model>> LoadShard(const std::string& dir,
                                                                const ShardConfig& shard,
                                                                Communicator* comm,
                                                                std::unique_ptr<Ops> ops);
  Gemma4Model(ModelConfig config, ShardLayout layout, std::unique_ptr<ModelWeights> weights,
              Communicator* comm, std::unique_ptr<Ops> ops);

  const ModelConfig& config() const { return config_; }
  // Generation stops after these ids (generation_config.json eos_token_id; default 1, 106, 50).
  const std::vector<int>& stop_token_ids() const { return stop_token_ids_; }
  std::unique_ptr<SequenceKvCache> NewSequence() const;
  // This rank's KV heads of every layer (all of them unsharded).
  std::vector<int> LocalKvHeads() const;
  // Paged KV storage for this rank's KV heads (see paged_kv_cache.h).
  absl::StatusOr<std::unique_ptr<PagedKvStorage>> NewPagedStorage(
      const PagedKvOptions& options) const;

  // Runs the chunks, appends their K/V to their caches, and returns logits (after the final
  // softcap) as rows of vocab_size floats. Errors (InvalidArgument) for out-of-range token ids,
  // empty chunks, a sequence listed twice, or positions beyond max_position_embeddings
  // (FailedPrecondition for a paged cache whose block table lacks the slots); on error no cache
  // is changed. A failed collective (a dead peer) returns its status; the caches of the
  // batch are then left mid-step and must be dropped.
  absl::StatusOr<std::vector<float>> Forward(absl::Span<const SequenceChunk> chunks,
                                             LogitsFor which);

 private:
  struct Batch;  // per-step token layout (gemma4_model.cc)

  absl::Status Attention(int layer, const Batch& b, const float* normed, float* out);
  absl::Status FeedForward(int layer, const Batch& b, const float* residual, float* out);
  void Moe(int layer, const Batch& b, const float* residual, float* out);
  absl::Status Embed(const Batch& b, float* x);
  absl::StatusOr<std::vector<float>> Logits(std::vector<float> hidden, int64_t rows);
  // Sums a partial result over the replica's ranks (no-op unsharded).
  absl::Status AllReduce(float* data, int64_t count);
  void PerLayerInputs(const Batch& b, const float* embedded);
  void ApplyPerLayerInput(int layer, const Batch& b, float* x);

  ModelConfig config_;
  ShardLayout layout_;
  Communicator* comm_;  // null when unsharded
  std::unique_ptr<ModelWeights> w_;
  std::unique_ptr<Ops> ops_;
  std::vector<int> stop_token_ids_ = {1, 106, 50};
  float embed_scale_ = 1.0f;
  float ple_embed_scale_ = 1.0f;
  std::vector<float> inv_freq_sliding_, inv_freq_global_;
  // Scratch reused across steps (grown, never shrunk).
  struct Workspace {
    std::vector<float> x, normed, branch, q, k, v, attn, u, gate, up, partial;
  } ws_;
  std::vector<float> ple_inputs_;  // [T, L, P]
};

// Inverse RoPE frequencies for a layer type as transformers computes them (fp32), D/2 entries;
// proportional RoPE zeroes the position-free pairs.
std::vector<float> RopeInvFreq(const RopeConfig& rope, int head_dim);

}  // namespace g4

#endif  // G4SERVE_WORKER_MODEL_GEMMA4_MODEL_H_
