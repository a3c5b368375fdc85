#include "worker/model/shard_layout.h"

#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

absl::Status NotDivisible(absl::string_view what, int64_t n, absl::string_view by, int64_t d) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " = ", n, " is not divisible by ", by, " = ", d));
}

Range Part(int64_t n, int parts, int index) {
  return Range{n / parts * index, n / parts * (index + 1)};
}

}  // namespace

absl::StatusOr<ShardLayout> ShardLayout::Create(const ModelConfig& c, const ShardConfig& s) {
  const int w = s.world_size;
  if (w < 1 || s.rank < 0 || s.rank >= w) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", s.rank, " of world size ", w));
  }
  if (s.expert_parallel_size < 1 || w % s.expert_parallel_size != 0) {
    return NotDivisible("world size", w, "expert_parallel_size", s.expert_parallel_size);
  }
  ShardLayout l;
  l.shard_ = s;
  if (c.num_heads % w != 0) return NotDivisible("num_attention_heads", c.num_heads, "world size", w);
  for (int layer = 0; layer < c.num_layers; ++layer) {
    AttentionShard a;
    a.q_heads = Part(c.num_heads, w, s.rank);
    const int kv = c.NumKvHeads(layer);
    if (kv >= w) {
      if (kv % w != 0) return NotDivisible(absl::StrCat("layer ", layer, " KV heads"), kv, "world size", w);
      a.kv_heads = Part(kv, w, s.rank);
    } else {
      if (w % kv != 0) return NotDivisible("world size", w, absl::StrCat("layer ", layer, " KV heads"), kv);
      const int head = s.rank / (w / kv);  // replicated: each KV head serves w / kv ranks
      a.kv_heads = Range{head, head + 1};
    }
    l.attention_.push_back(a);
    const int64_t width = c.MlpWidth(layer);
    if (width % w != 0) return NotDivisible(absl::StrCat("layer ", layer, " MLP width"), width, "world size", w);
    l.mlp_.push_back(Part(width, w, s.rank));
  }
  if (c.vocab_size % w != 0) return NotDivisible("vocab_size", c.vocab_size, "world size", w);
  l.vocab_ = Part(c.vocab_size, w, s.rank);
  if (c.enable_moe_block) {
    const int ep = s.expert_parallel_size, etp = w / ep;
    if (c.num_experts % ep != 0) {
      return NotDivisible("num_experts", c.num_experts, "expert_parallel_size", ep);
    }
    if (c.moe_intermediate_size % etp != 0) {
      return NotDivisible("moe_intermediate_size", c.moe_intermediate_size,
                          "world size / expert_parallel_size", etp);
    }
    l.experts_ = Part(c.num_experts, ep, s.rank / etp);
    l.moe_intermediate_ = Part(c.moe_intermediate_size, etp, s.rank % etp);
  } else if (s.expert_parallel_size != 1) {
    return absl::InvalidArgumentError("expert_parallel_size > 1 needs an MoE model");
  }
  return l;
}

}  // namespace g4
