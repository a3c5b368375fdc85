// Test-only: the tiny Gemma 4 config.json texts of gemma4-text.md §6, and helpers to vary them.
#ifndef G4SERVE_TESTS_COMMON_TEST_CONFIGS_H_
#define G4SERVE_TESTS_COMMON_TEST_CONFIGS_H_

#include <string>

#include "nlohmann/json.hpp"

namespace g4::testing_util {

// gemma4-text.md §6.1, verbatim.
inline constexpr const char* kTinyDenseConfig = R"json({
  "architectures": ["Gemma4ForCausalLM"],
  "model_type": "gemma4_text",
  "vocab_size": 512,
  "hidden_size": 64,
  "intermediate_size": 128,
  "num_hidden_layers": 6,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "num_global_key_value_heads": 1,
  "head_dim": 16,
  "global_head_dim": 32,
  "attention_k_eq_v": true,
  "attention_bias": false,
  "attention_dropout": 0.0,
  "hidden_activation": "gelu_pytorch_tanh",
  "max_position_embeddings": 512,
  "rms_norm_eps": 1e-06,
  "sliding_window": 4,
  "layer_types": ["sliding_attention", "sliding_attention", "full_attention",
                  "sliding_attention", "sliding_attention", "full_attention"],
  "rope_parameters": {
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0}
  },
  "final_logit_softcapping": 2.0,
  "tie_word_embeddings": true,
  "hidden_size_per_layer_input": 0,
  "vocab_size_per_layer_input": 512,
  "num_kv_shared_layers": 0,
  "use_double_wide_mlp": false,
  "enable_moe_block": false,
  "num_experts": null,
  "top_k_experts": null,
  "moe_intermediate_size": null,
  "use_bidirectional_attention": null,
  "initializer_range": 0.2,
  "pad_token_id": 0,
  "eos_token_id": 1,
  "bos_token_id": 2,
  "dtype": "float32"
})json";

// §6.2: merged over §6.1.
inline constexpr const char* kTinyMoeOverrides = R"json({
  "intermediate_size": 64,
  "enable_moe_block": true,
  "num_experts": 8,
  "top_k_experts": 2,
  "moe_intermediate_size": 32
})json";

// §6.3: merged over §6.1.
inline constexpr const char* kTinyEOverrides = R"json({
  "attention_k_eq_v": false,
  "num_global_key_value_heads": null,
  "hidden_size_per_layer_input": 8,
  "vocab_size_per_layer_input": 512,
  "num_kv_shared_layers": 2,
  "use_double_wide_mlp": true
})json";

// `base` with the keys of `overrides` replaced (a shallow JSON merge).
inline std::string MergeJson(const std::string& base, const std::string& overrides) {
  nlohmann::ordered_json b = nlohmann::ordered_json::parse(base, nullptr, false);
  const nlohmann::ordered_json o = nlohmann::ordered_json::parse(overrides, nullptr, false);
  for (const auto& [k, v] : o.items()) b[k] = v;
  return b.dump(2);
}

// The dense config as an editable JSON value.
inline nlohmann::ordered_json TinyDenseJson() {
  return nlohmann::ordered_json::parse(kTinyDenseConfig, nullptr, false);
}

// The multimodal wrapper layout: `text` under `text_config`, plus root keys of a released model.
inline std::string WrapConfig(const nlohmann::ordered_json& text) {
  nlohmann::ordered_json root = {
      {"architectures", {"Gemma4ForConditionalGeneration"}},
      {"model_type", "gemma4"},
      {"text_config", text},
      {"vision_config", {{"model_type", "gemma4_vision"}}},
      {"audio_config", nullptr},
      {"eos_token_id", {1, 106}},
      {"tie_word_embeddings", true},
  };
  root["text_config"]["model_type"] = "gemma4_text";
  return root.dump(2);
}

}  // namespace g4::testing_util

#endif  // G4SERVE_TESTS_COMMON_TEST_CONFIGS_H_
