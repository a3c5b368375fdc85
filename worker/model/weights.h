// Gemma 4 decoder weights of one rank as the CPU reference holds them: fp32, in the checkpoint's
// layouts (projections [out, in], experts [E, 2·I, H] and [E, H, I]) restricted to the rank's
// slices (shard_layout.h): local heads, local MLP rows, local vocabulary rows, local experts.
#ifndef G4SERVE_WORKER_MODEL_WEIGHTS_H_
#define G4SERVE_WORKER_MODEL_WEIGHTS_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/checkpoint.h"
#include "common/dtype.h"
#include "common/model_config.h"
#include "worker/model/shard_layout.h"

namespace g4 {

using HostTensor = std::vector<float>;

struct AttentionWeights {
  HostTensor q_proj, k_proj, v_proj, o_proj;  // k/v empty on KV-shared layers; v on k_eq_v
  HostTensor q_norm, k_norm;
};

struct MlpWeights {
  int64_t width = 0;
  HostTensor gate_proj, up_proj, down_proj;
};

struct MoeWeights {
  HostTensor router_proj;       // [E, H]
  HostTensor router_scale;      // [H]
  HostTensor per_expert_scale;  // [E]
  HostTensor gate_up_proj;      // [E, 2·I, H], rows [0, I) gate, [I, 2I) up
  HostTensor down_proj;         // [E, H, I]
};

struct PerLayerInputWeights {   // E2B/E4B per-layer embeddings, per layer
  HostTensor input_gate;        // [P, H]
  HostTensor projection;        // [H, P]
  HostTensor post_norm;         // [H]
};

struct LayerWeights {
  HostTensor input_layernorm, post_attention_layernorm;
  HostTensor pre_feedforward_layernorm, post_feedforward_layernorm;
  HostTensor pre_feedforward_layernorm_2, post_feedforward_layernorm_1,
      post_feedforward_layernorm_2;  // MoE only
  float layer_scalar = 1.0f;
  AttentionWeights attn;
  MlpWeights mlp;
  MoeWeights moe;
  PerLayerInputWeights ple;
};

struct ModelWeights {
  HostTensor embed_tokens;  // [V_local, H]; also the LM head when tied
  HostTensor lm_head;       // [V_local, H] only when not tied
  HostTensor final_norm;    // [H]
  DType embed_dtype = DType::kF32;
  // Per-layer embeddings (E models).
  HostTensor embed_tokens_per_layer;      // [V_ple, L·P]
  HostTensor per_layer_model_projection;  // [L·P, H]
  HostTensor per_layer_projection_norm;   // [P]
  DType embed_per_layer_dtype = DType::kF32;
  std::vector<LayerWeights> layers;

  const HostTensor& LmHead() const { return lm_head.empty() ? embed_tokens : lm_head; }
};

// Loads this rank's slice of every decoder tensor of `ckpt` (checking each full shape against
// the config), reading only the bytes of the slice, and accepting the fallback namings of
// gemma4-text.md §3.6 for MoE tensors.
absl::StatusOr<std::unique_ptr<ModelWeights>> LoadModelWeights(const Checkpoint& ckpt,
                                                               const ShardLayout& layout);

}  // namespace g4

#endif  // G4SERVE_WORKER_MODEL_WEIGHTS_H_
