#include "common/model_config.h"

#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using Json = nlohmann::json;

// Reads keys of one JSON object, producing errors that name the file and the key.
class Fields {
 public:
  Fields(const Json& obj, absl::string_view source) : obj_(obj), source_(source) {}

  absl::Status Error(absl::string_view key, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": `", key, "` ", what));
  }
  bool Present(const char* key) const { return obj_.contains(key) && !obj_[key].is_null(); }

  absl::StatusOr<int64_t> Int(const char* key) const {
    if (!Present(key)) return Error(key, "is required");
    const Json& v = obj_[key];
    if (!v.is_number_integer()) return Error(key, absl::StrCat("must be an integer, got ", v.dump()));
    // Every integer key fits in 32 bits; larger values would be truncated by the int fields.
    if (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t{INT32_MAX}
                               : (v.get<int64_t>() > INT32_MAX || v.get<int64_t>() < INT32_MIN)) {
      return Error(key, absl::StrCat("is out of range, got ", v.dump()));
    }
    return v.get<int64_t>();
  }
  absl::StatusOr<int64_t> PositiveInt(const char* key) const {
    G4_ASSIGN_OR_RETURN(int64_t v, Int(key));
    if (v <= 0) return Error(key, absl::StrCat("must be positive, got ", v));
    return v;
  }
  absl::StatusOr<int64_t> IntOr(const char* key, int64_t def) const {
    return Present(key) ? Int(key) : absl::StatusOr<int64_t>(def);
  }
  absl::StatusOr<double> Number(const Json& v, absl::string_view key) const {
    if (!v.is_number()) return Error(key, absl::StrCat("must be a number, got ", v.dump()));
    return v.get<double>();
  }
  absl::StatusOr<double> NumberOr(const char* key, double def) const {
    return Present(key) ? Number(obj_[key], key) : absl::StatusOr<double>(def);
  }
  absl::StatusOr<bool> BoolOr(const char* key, bool def) const {
    if (!Present(key)) return def;
    if (!obj_[key].is_boolean()) return Error(key, absl::StrCat("must be a boolean, got ", obj_[key].dump()));
    return obj_[key].get<bool>();
  }
  absl::StatusOr<bool> Bool(const char* key) const {
    if (!Present(key)) return Error(key, "is required");
    return BoolOr(key, false);
  }
  const Json& obj() const { return obj_; }
  absl::string_view source() const { return source_; }

 private:
  const Json& obj_;
  absl::string_view source_;
};

absl::StatusOr<std::vector<int>> IntOrIntList(const Json& v, absl::string_view key,
                                              const Fields& f) {
  std::vector<int> out;
  if (v.is_number_integer()) {
    out.push_back(v.get<int>());
  } else if (v.is_array()) {
    for (const Json& e : v) {
      if (!e.is_number_integer()) return f.Error(key, "must hold integers");
      out.push_back(e.get<int>());
    }
  } else {
    return f.Error(key, absl::StrCat("must be an integer or a list of integers, got ", v.dump()));
  }
  return out;
}

absl::StatusOr<RopeConfig> ParseRope(const Json& rope, const std::string& key, const Fields& f) {
  if (!rope.is_object()) return f.Error(key, "must be an object");
  RopeConfig rc;
  // (nlohmann's value() throws on a non-string, so the type is checked first.)
  const bool has_type = rope.contains("rope_type") && !rope["rope_type"].is_null();
  if (has_type && !rope["rope_type"].is_string()) {
    return f.Error(key + ".rope_type", absl::StrCat("must be a string, got ", rope["rope_type"].dump()));
  }
  const std::string type = has_type ? rope["rope_type"].get<std::string>() : "default";
  if (type == "default") {
    rc.type = RopeType::kDefault;
  } else if (type == "proportional") {
    rc.type = RopeType::kProportional;
  } else {
    return f.Error(key + ".rope_type",
                   absl::StrCat("has unsupported value \"", type,
                                "\" (supported: default, proportional)"));
  }
  if (!rope.contains("rope_theta")) return f.Error(key + ".rope_theta", "is required");
  G4_ASSIGN_OR_RETURN(rc.theta, f.Number(rope["rope_theta"], key + ".rope_theta"));
  if (rope.contains("factor") && !rope["factor"].is_null()) {
    G4_ASSIGN_OR_RETURN(double factor, f.Number(rope["factor"], key + ".factor"));
    if (factor != 1.0) {
      return f.Error(key + ".factor", absl::StrCat("= ", factor, " is unsupported (only 1.0)"));
    }
  }
  if (rope.contains("partial_rotary_factor") && !rope["partial_rotary_factor"].is_null()) {
    G4_ASSIGN_OR_RETURN(rc.partial_rotary_factor,
                        f.Number(rope["partial_rotary_factor"], key + ".partial_rotary_factor"));
    if (rc.partial_rotary_factor <= 0 || rc.partial_rotary_factor > 1) {
      return f.Error(key + ".partial_rotary_factor",
                     absl::StrCat("must be in (0, 1], got ", rc.partial_rotary_factor));
    }
    if (rc.type == RopeType::kDefault && rc.partial_rotary_factor != 1.0) {
      return f.Error(key + ".partial_rotary_factor",
                     "is only supported with rope_type \"proportional\"");
    }
  }
  return rc;
}

// Reads the global-layer geometry from `per_layer_config`. Every full_attention layer must have
// the same override, and sliding layers none that changes their geometry: the engine keeps one
// geometry per layer type.
absl::Status ParsePerLayerConfig(const Fields& f, ModelConfig& c) {
  const Json& plc = f.obj()["per_layer_config"];
  if (!plc.is_object()) return f.Error("per_layer_config", "must be an object");
  int64_t head_dim = -1, kv_heads = -1;
  for (auto it = plc.begin(); it != plc.end(); ++it) {
    const std::string key = "per_layer_config." + it.key();
    char* end = nullptr;
    const long parsed = std::strtol(it.key().c_str(), &end, 10);
    if (end == it.key().c_str() || *end != '\0' || parsed < 0 || parsed >= c.num_layers) {
      return f.Error(key, "is not a layer index");
    }
    const int layer = static_cast<int>(parsed);
    const Json& o = it.value();
    if (!o.is_object()) return f.Error(key, "must be an object");
    for (auto kv = o.begin(); kv != o.end(); ++kv) {
      if (kv.key() != "head_dim" && kv.key() != "num_key_value_heads") {
        return f.Error(key + "." + kv.key(), "is an unsupported per-layer override");
      }
      if (!kv.value().is_number_integer() || kv.value().get<int64_t>() <= 0) {
        return f.Error(key + "." + kv.key(), "must be a positive integer");
      }
    }
    const int64_t hd = o.value("head_dim", static_cast<int64_t>(c.head_dim));
    const int64_t kvh = o.value("num_key_value_heads", static_cast<int64_t>(c.num_kv_heads));
    if (!c.IsGlobal(layer)) {
      if (hd != c.head_dim || kvh != c.num_kv_heads) {
        return f.Error(key, "overrides a sliding layer's geometry (unsupported)");
      }
      continue;
    }
    if ((head_dim != -1 && hd != head_dim) || (kv_heads != -1 && kvh != kv_heads)) {
      return f.Error(key, "differs from another full_attention layer (unsupported)");
    }
    head_dim = hd;
    kv_heads = kvh;
  }
  if (head_dim == -1) return f.Error("per_layer_config", "has no full_attention layer");
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.IsGlobal(l) && !plc.contains(std::to_string(l))) {
      return f.Error("per_layer_config", absl::StrCat("has no entry for full_attention layer ", l));
    }
  }
  c.global_head_dim = static_cast<int>(head_dim);
  if (kv_heads != c.num_kv_heads && !c.attention_k_eq_v) {
    return f.Error("per_layer_config",
                   "overrides num_key_value_heads of global layers without attention_k_eq_v");
  }
  c.num_global_kv_heads = static_cast<int>(kv_heads);
  return absl::OkStatus();
}

absl::Status ParseTextConfig(const Fields& f, ModelConfig& c) {
  G4_ASSIGN_OR_RETURN(c.vocab_size, f.PositiveInt("vocab_size"));
  G4_ASSIGN_OR_RETURN(c.hidden_size, f.PositiveInt("hidden_size"));
  G4_ASSIGN_OR_RETURN(c.intermediate_size, f.PositiveInt("intermediate_size"));
  G4_ASSIGN_OR_RETURN(int64_t layers, f.PositiveInt("num_hidden_layers"));
  c.num_layers = static_cast<int>(layers);
  G4_ASSIGN_OR_RETURN(int64_t heads, f.PositiveInt("num_attention_heads"));
  c.num_heads = static_cast<int>(heads);
  G4_ASSIGN_OR_RETURN(int64_t kv_heads, f.PositiveInt("num_key_value_heads"));
  c.num_kv_heads = static_cast<int>(kv_heads);
  G4_ASSIGN_OR_RETURN(int64_t head_dim, f.PositiveInt("head_dim"));
  c.head_dim = static_cast<int>(head_dim);
  // Required: released models differ (31B/26B true, E2B/E4B false), so no default is right.
  G4_ASSIGN_OR_RETURN(c.attention_k_eq_v, f.Bool("attention_k_eq_v"));
  G4_ASSIGN_OR_RETURN(int64_t window, f.PositiveInt("sliding_window"));
  c.sliding_window = static_cast<int>(window);
  G4_ASSIGN_OR_RETURN(c.max_position_embeddings, f.PositiveInt("max_position_embeddings"));
  G4_ASSIGN_OR_RETURN(c.rms_norm_eps, f.NumberOr("rms_norm_eps", 1e-6));
  if (!(c.rms_norm_eps > 0)) return f.Error("rms_norm_eps", "must be positive");
  G4_ASSIGN_OR_RETURN(c.tie_word_embeddings, f.BoolOr("tie_word_embeddings", true));

  // Unsupported variations are rejected rather than silently computed wrong.
  G4_ASSIGN_OR_RETURN(bool bias, f.BoolOr("attention_bias", false));
  if (bias) return f.Error("attention_bias", "= true is unsupported (Gemma 4 has no biases)");
  if (f.Present("hidden_activation") && !f.obj()["hidden_activation"].is_string()) {
    return f.Error("hidden_activation",
                   absl::StrCat("must be a string, got ", f.obj()["hidden_activation"].dump()));
  }
  const std::string act = f.Present("hidden_activation")
                              ? f.obj()["hidden_activation"].get<std::string>()
                              : "gelu_pytorch_tanh";
  if (act != "gelu_pytorch_tanh") {
    return f.Error("hidden_activation",
                   absl::StrCat("has unsupported value \"", act, "\" (supported: gelu_pytorch_tanh)"));
  }
  if (f.Present("attn_logit_softcapping")) {
    return f.Error("attn_logit_softcapping", "is unsupported (Gemma 4 has no attention softcap)");
  }
  if (f.Present("use_bidirectional_attention")) {
    const Json& v = f.obj()["use_bidirectional_attention"];
    if (!(v.is_string() && v.get<std::string>() == "vision")) {
      return f.Error("use_bidirectional_attention",
                     absl::StrCat("has unsupported value ", v.dump(), " (supported: null, \"vision\")"));
    }
  }

  // layer_types is required: generating a pattern would be a class default, not the model.
  if (!f.Present("layer_types")) return f.Error("layer_types", "is required");
  const Json& lt = f.obj()["layer_types"];
  if (!lt.is_array()) return f.Error("layer_types", "must be a list");
  if (static_cast<int>(lt.size()) != c.num_layers) {
    return f.Error("layer_types", absl::StrCat("has ", lt.size(), " entries but num_hidden_layers is ",
                                               c.num_layers));
  }
  for (const Json& t : lt) {
    const std::string s = t.is_string() ? t.get<std::string>() : t.dump();
    if (s == "sliding_attention") {
      c.layer_types.push_back(LayerType::kSliding);
    } else if (s == "full_attention") {
      c.layer_types.push_back(LayerType::kGlobal);
    } else {
      return f.Error("layer_types", absl::StrCat("has unsupported entry \"", s,
                                                 "\" (supported: sliding_attention, full_attention)"));
    }
  }
  if (c.layer_types.back() != LayerType::kGlobal) {
    return f.Error("layer_types", "must end with full_attention (transformers forces this)");
  }
  const bool has_global = c.NumLayersOfType(LayerType::kGlobal) > 0;
  c.num_global_kv_heads = c.num_kv_heads;
  if (has_global && !f.Present("global_head_dim") && f.Present("per_layer_config")) {
    // transformers >= 5.2x re-saves configs with the global geometry moved into
    // `per_layer_config` ({"5": {"head_dim": 512, "num_key_value_heads": 4}, ...}).
    G4_RETURN_IF_ERROR(ParsePerLayerConfig(f, c));
  } else {
    if (has_global) {
      G4_ASSIGN_OR_RETURN(int64_t ghd, f.PositiveInt("global_head_dim"));
      c.global_head_dim = static_cast<int>(ghd);
    }
    if (c.attention_k_eq_v) {
      G4_ASSIGN_OR_RETURN(int64_t g, f.PositiveInt("num_global_key_value_heads"));
      c.num_global_kv_heads = static_cast<int>(g);
    }
  }
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.num_heads % c.NumKvHeads(l) != 0) {
      return f.Error(c.IsGlobal(l) && c.attention_k_eq_v ? "num_global_key_value_heads"
                                                          : "num_key_value_heads",
                     absl::StrCat("= ", c.NumKvHeads(l), " does not divide num_attention_heads = ",
                                  c.num_heads));
    }
  }

  // RoPE: `rope_parameters` keyed by layer type (transformers >= 5 layout).
  if (!f.Present("rope_parameters")) return f.Error("rope_parameters", "is required");
  const Json& rp = f.obj()["rope_parameters"];
  if (!rp.is_object()) return f.Error("rope_parameters", "must be an object");
  if (!rp.contains("sliding_attention")) {
    return f.Error("rope_parameters.sliding_attention", "is required");
  }
  G4_ASSIGN_OR_RETURN(c.rope_sliding,
                      ParseRope(rp["sliding_attention"], "rope_parameters.sliding_attention", f));
  if (has_global) {
    if (!rp.contains("full_attention")) return f.Error("rope_parameters.full_attention", "is required");
    G4_ASSIGN_OR_RETURN(c.rope_global,
                        ParseRope(rp["full_attention"], "rope_parameters.full_attention", f));
  }

  // The softcap key must be present: null means "no cap", a missing key is ambiguous.
  if (!f.obj().contains("final_logit_softcapping")) {
    return f.Error("final_logit_softcapping", "is required (use null for no cap)");
  }
  if (f.Present("final_logit_softcapping")) {
    G4_ASSIGN_OR_RETURN(double cap, f.Number(f.obj()["final_logit_softcapping"],
                                             "final_logit_softcapping"));
    if (!(cap > 0)) return f.Error("final_logit_softcapping", "must be positive or null");
    c.final_logit_softcapping = cap;
  }

  // MoE.
  G4_ASSIGN_OR_RETURN(c.enable_moe_block, f.BoolOr("enable_moe_block", false));
  if (c.enable_moe_block) {
    G4_ASSIGN_OR_RETURN(int64_t e, f.PositiveInt("num_experts"));
    c.num_experts = static_cast<int>(e);
    G4_ASSIGN_OR_RETURN(int64_t k, f.PositiveInt("top_k_experts"));
    c.top_k_experts = static_cast<int>(k);
    G4_ASSIGN_OR_RETURN(c.moe_intermediate_size, f.PositiveInt("moe_intermediate_size"));
    if (c.top_k_experts > c.num_experts) {
      return f.Error("top_k_experts", absl::StrCat("= ", c.top_k_experts, " exceeds num_experts = ",
                                                   c.num_experts));
    }
  }

  // Per-layer embeddings: required, since the class default (256) is wrong for 31B/26B.
  G4_ASSIGN_OR_RETURN(int64_t ple, f.Int("hidden_size_per_layer_input"));
  if (ple < 0) return f.Error("hidden_size_per_layer_input", "must be >= 0");
  c.hidden_size_per_layer_input = static_cast<int>(ple);
  if (ple > 0) {
    G4_ASSIGN_OR_RETURN(c.vocab_size_per_layer_input, f.PositiveInt("vocab_size_per_layer_input"));
  }
  G4_ASSIGN_OR_RETURN(int64_t shared, f.IntOr("num_kv_shared_layers", 0));
  if (shared < 0 || shared >= c.num_layers) {
    return f.Error("num_kv_shared_layers",
                   absl::StrCat("= ", shared, " must be in [0, num_hidden_layers)"));
  }
  c.num_kv_shared_layers = static_cast<int>(shared);
  G4_ASSIGN_OR_RETURN(c.use_double_wide_mlp, f.BoolOr("use_double_wide_mlp", false));
  for (int l = 0; l < c.num_layers; ++l) {
    if (c.IsKvShared(l) && c.KvSourceLayer(l) < 0) {
      return f.Error("num_kv_shared_layers",
                     absl::StrCat("= ", shared, " leaves layer ", l,
                                  " without an earlier non-shared layer of its type"));
    }
  }

  G4_ASSIGN_OR_RETURN(int64_t pad, f.IntOr("pad_token_id", 0));
  c.pad_token_id = static_cast<int>(pad);
  G4_ASSIGN_OR_RETURN(int64_t bos, f.IntOr("bos_token_id", 2));
  c.bos_token_id = static_cast<int>(bos);
  if (f.Present("eos_token_id")) {
    G4_ASSIGN_OR_RETURN(c.eos_token_ids, IntOrIntList(f.obj()["eos_token_id"], "eos_token_id", f));
  }
  return absl::OkStatus();
}

}  // namespace

int ModelConfig::KvSourceLayer(int layer) const {
  if (!IsKvShared(layer)) return layer;
  const int first_shared = num_layers - num_kv_shared_layers;
  for (int l = first_shared - 1; l >= 0; --l) {
    if (layer_types[l] == layer_types[layer]) return l;
  }
  return -1;
}

int ModelConfig::NumLayersOfType(LayerType t) const {
  int n = 0;
  for (LayerType x : layer_types) n += (x == t);
  return n;
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text, absl::string_view source) {
  Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(source, ": invalid JSON"));
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": top level must be a JSON object"));
  }
  ModelConfig c;
  const bool wrapped = root.contains("text_config") && root["text_config"].is_object();
  const std::string text_source = wrapped ? absl::StrCat(source, " text_config") : std::string(source);
  const Json& text = wrapped ? root["text_config"] : root;
  if (text.contains("model_type") && text["model_type"].is_string()) {
    const std::string mt = text["model_type"].get<std::string>();
    if (mt != "gemma4_text" && mt != "gemma4") {
      return absl::InvalidArgumentError(absl::StrCat(
          text_source, ": `model_type` has unsupported value \"", mt, "\" (expected gemma4_text)"));
    }
  }
  Fields f(text, text_source);
  G4_RETURN_IF_ERROR(ParseTextConfig(f, c));
  // The wrapper's root carries tie_word_embeddings and the instruction-tuned eos ids.
  if (wrapped) {
    Fields rf(root, source);
    if (rf.Present("tie_word_embeddings")) {
      G4_ASSIGN_OR_RETURN(c.tie_word_embeddings, rf.Bool("tie_word_embeddings"));
    }
    if (rf.Present("eos_token_id")) {
      G4_ASSIGN_OR_RETURN(c.eos_token_ids, IntOrIntList(root["eos_token_id"], "eos_token_id", rf));
    }
  }
  return c;
}

}  // namespace g4
