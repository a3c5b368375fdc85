// Which part of the model one rank of a replica holds.
//
// A replica of `world_size` ranks splits every dense part tensor-parallel over all its ranks:
// attention by heads (q/k/v column-parallel, o row-parallel), the dense or shared MLP by its
// intermediate dimension, and the embedding / LM head by vocabulary rows. When a layer type has
// fewer KV heads than ranks, its KV heads are replicated: each serves world_size / num_kv_heads
// consecutive ranks. MoE experts are laid on an `expert_parallel_size` × (world_size /
// expert_parallel_size) grid: the first factor partitions the experts by id, the second splits
// each expert's intermediate dimension. Norms, the router and per-layer-embedding weights are
// replicated. See docs/parallel_plan.md.
#ifndef G4SERVE_WORKER_MODEL_SHARD_LAYOUT_H_
#define G4SERVE_WORKER_MODEL_SHARD_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model_config.h"

namespace g4 {

struct ShardConfig {
  int rank = 0;
  int world_size = 1;
  int expert_parallel_size = 1;
};

struct Range {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

struct AttentionShard {
  Range q_heads;   // query heads held by this rank
  Range kv_heads;  // KV heads it computes (one replicated head when heads < ranks)
};

class ShardLayout {
 public:
  // Errors (InvalidArgument) name the dimension that does not divide.
  static absl::StatusOr<ShardLayout> Create(const ModelConfig& config, const ShardConfig& shard);

  const ShardConfig& shard() const { return shard_; }
  bool is_sharded() const { return shard_.world_size > 1; }
  const AttentionShard& attention(int layer) const { return attention_[layer]; }
  Range mlp(int layer) const { return mlp_[layer]; }
  Range vocab() const { return vocab_; }
  Range experts() const { return experts_; }
  Range moe_intermediate() const { return moe_intermediate_; }

 private:
  ShardConfig shard_;
  std::vector<AttentionShard> attention_;
  std::vector<Range> mlp_;
  Range vocab_, experts_, moe_intermediate_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_MODEL_SHARD_LAYOUT_H_
