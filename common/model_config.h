// The Gemma 4 text-decoder hyper-parameters the engine uses, parsed from a Hugging Face
// config.json and validated.
//
// Missing keys are never filled from the transformers class defaults (they describe no released
// model; see gemma4-text.md pitfall 20): a key is either required, or its default is the value
// every released Gemma 4 model uses (listed in docs/checkpoints.md). Unsupported values are
// errors naming the key and the value.
#ifndef G4SERVE_COMMON_MODEL_CONFIG_H_
#define G4SERVE_COMMON_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace g4 {

enum class LayerType { kSliding, kGlobal };
enum class RopeType { kDefault, kProportional };

struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;  // proportional only
};

struct ModelConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;         // sliding layers (and global ones unless k_eq_v)
  int num_global_kv_heads = 0;  // global layers when attention_k_eq_v
  int head_dim = 0;             // sliding layers
  int global_head_dim = 0;      // global layers
  bool attention_k_eq_v = false;
  std::vector<LayerType> layer_types;
  int sliding_window = 0;
  RopeConfig rope_sliding;
  RopeConfig rope_global;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  std::optional<double> final_logit_softcapping;  // nullopt: no cap
  bool tie_word_embeddings = true;

  // MoE (26B-A4B)
  bool enable_moe_block = false;
  int num_experts = 0;
  int top_k_experts = 0;
  int64_t moe_intermediate_size = 0;

  // E2B / E4B
  int hidden_size_per_layer_input = 0;  // 0: no per-layer embeddings
  int64_t vocab_size_per_layer_input = 0;
  int num_kv_shared_layers = 0;
  bool use_double_wide_mlp = false;

  int pad_token_id = 0;
  int bos_token_id = 2;
  std::vector<int> eos_token_ids;  // from config.json (root or text_config)

  // --- derived per-layer geometry ---
  bool IsGlobal(int layer) const { return layer_types[layer] == LayerType::kGlobal; }
  int HeadDim(int layer) const { return IsGlobal(layer) ? global_head_dim : head_dim; }
  int NumKvHeads(int layer) const {
    return IsGlobal(layer) && attention_k_eq_v ? num_global_kv_heads : num_kv_heads;
  }
  // Global k_eq_v layers have no v_proj: V is the raw k_proj output.
  bool HasVProj(int layer) const { return !(IsGlobal(layer) && attention_k_eq_v); }
  const RopeConfig& Rope(int layer) const { return IsGlobal(layer) ? rope_global : rope_sliding; }
  // Layers >= num_layers - num_kv_shared_layers compute no K/V and read their donor's cache.
  bool IsKvShared(int layer) const { return layer >= num_layers - num_kv_shared_layers; }
  // The layer whose KV cache `layer` attends over: itself, or for a shared layer the last
  // non-shared layer of the same type.
  int KvSourceLayer(int layer) const;
  int64_t MlpWidth(int layer) const {
    return use_double_wide_mlp && IsKvShared(layer) ? 2 * intermediate_size : intermediate_size;
  }
  int NumLayersOfType(LayerType t) const;
};

// Parses config.json text. Accepts the multimodal wrapper (reads `text_config`) and the
// text-only layout. `source` names the file in error messages.
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source = "config.json");

}  // namespace g4

#endif  // G4SERVE_COMMON_MODEL_CONFIG_H_
