#include "common/model_config.h"

#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/test_configs.h"

namespace g4 {
namespace {

using ::g4::testing_util::kTinyDenseConfig;
using ::g4::testing_util::kTinyEOverrides;
using ::g4::testing_util::kTinyMoeOverrides;
using ::g4::testing_util::MergeJson;
using ::g4::testing_util::TinyDenseJson;
using ::g4::testing_util::WrapConfig;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Json = nlohmann::ordered_json;

constexpr LayerType S = LayerType::kSliding;
constexpr LayerType F = LayerType::kGlobal;

// Parses the dense config after `edit` changed it; returns the status message ("" when OK).
template <typename Edit>
std::string DenseError(Edit edit) {
  Json j = TinyDenseJson();
  edit(j);
  auto c = ParseModelConfig(j.dump(), "config.json");
  return c.ok() ? std::string() : std::string(c.status().message());
}

TEST(ModelConfigTest, TinyDense) {
  auto c = ParseModelConfig(kTinyDenseConfig);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 128);
  EXPECT_EQ(c->num_layers, 6);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->num_global_kv_heads, 1);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->global_head_dim, 32);
  EXPECT_TRUE(c->attention_k_eq_v);
  EXPECT_THAT(c->layer_types, ElementsAre(S, S, F, S, S, F));
  EXPECT_EQ(c->sliding_window, 4);
  EXPECT_EQ(c->rope_sliding.type, RopeType::kDefault);
  EXPECT_EQ(c->rope_sliding.theta, 10000.0);
  EXPECT_EQ(c->rope_sliding.partial_rotary_factor, 1.0);
  EXPECT_EQ(c->rope_global.type, RopeType::kProportional);
  EXPECT_EQ(c->rope_global.theta, 1000000.0);
  EXPECT_EQ(c->rope_global.partial_rotary_factor, 0.25);
  EXPECT_EQ(c->max_position_embeddings, 512);
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  ASSERT_TRUE(c->final_logit_softcapping.has_value());
  EXPECT_EQ(*c->final_logit_softcapping, 2.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->enable_moe_block);
  EXPECT_EQ(c->num_experts, 0);
  EXPECT_EQ(c->hidden_size_per_layer_input, 0);
  EXPECT_EQ(c->num_kv_shared_layers, 0);
  EXPECT_FALSE(c->use_double_wide_mlp);
  EXPECT_EQ(c->pad_token_id, 0);
  EXPECT_EQ(c->bos_token_id, 2);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1));

  // Derived geometry.
  EXPECT_FALSE(c->IsGlobal(0));
  EXPECT_TRUE(c->IsGlobal(2));
  EXPECT_EQ(c->HeadDim(0), 16);
  EXPECT_EQ(c->HeadDim(2), 32);
  EXPECT_EQ(c->NumKvHeads(0), 2);
  EXPECT_EQ(c->NumKvHeads(5), 1);
  EXPECT_TRUE(c->HasVProj(1));
  EXPECT_FALSE(c->HasVProj(2));
  EXPECT_EQ(&c->Rope(5), &c->rope_global);
  EXPECT_EQ(&c->Rope(4), &c->rope_sliding);
  EXPECT_EQ(c->NumLayersOfType(S), 4);
  EXPECT_EQ(c->NumLayersOfType(F), 2);
  for (int l = 0; l < 6; ++l) {
    EXPECT_FALSE(c->IsKvShared(l));
    EXPECT_EQ(c->KvSourceLayer(l), l);
    EXPECT_EQ(c->MlpWidth(l), 128);
  }
}

TEST(ModelConfigTest, TinyMoe) {
  auto c = ParseModelConfig(MergeJson(kTinyDenseConfig, kTinyMoeOverrides));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->enable_moe_block);
  EXPECT_EQ(c->num_experts, 8);
  EXPECT_EQ(c->top_k_experts, 2);
  EXPECT_EQ(c->moe_intermediate_size, 32);
  EXPECT_EQ(c->intermediate_size, 64);
  EXPECT_EQ(c->MlpWidth(0), 64);
}

TEST(ModelConfigTest, TinyEFeatures) {
  auto c = ParseModelConfig(MergeJson(kTinyDenseConfig, kTinyEOverrides));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->attention_k_eq_v);
  EXPECT_EQ(c->hidden_size_per_layer_input, 8);
  EXPECT_EQ(c->vocab_size_per_layer_input, 512);
  EXPECT_EQ(c->num_kv_shared_layers, 2);
  EXPECT_TRUE(c->use_double_wide_mlp);
  EXPECT_FALSE(c->IsKvShared(3));
  EXPECT_TRUE(c->IsKvShared(4));
  EXPECT_TRUE(c->IsKvShared(5));
  EXPECT_EQ(c->KvSourceLayer(3), 3);
  EXPECT_EQ(c->KvSourceLayer(4), 3);
  EXPECT_EQ(c->KvSourceLayer(5), 2);
  EXPECT_EQ(c->MlpWidth(3), 128);
  EXPECT_EQ(c->MlpWidth(4), 256);
  EXPECT_EQ(c->MlpWidth(5), 256);
  // Without k_eq_v, global layers use num_key_value_heads and have a v_proj.
  EXPECT_EQ(c->NumKvHeads(5), 2);
  EXPECT_TRUE(c->HasVProj(5));
  EXPECT_EQ(c->HeadDim(5), 32);
}

TEST(ModelConfigTest, WrapperLayout) {
  auto c = ParseModelConfig(WrapConfig(TinyDenseJson()));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_layers, 6);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1, 106));  // the root's list wins
  EXPECT_TRUE(c->tie_word_embeddings);

  // Root tie_word_embeddings overrides text_config's.
  Json root = Json::parse(WrapConfig(TinyDenseJson()));
  root["tie_word_embeddings"] = false;
  c = ParseModelConfig(root.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ModelConfigTest, WrapperErrorsNameTextConfig) {
  Json text = TinyDenseJson();
  text.erase("sliding_window");
  auto c = ParseModelConfig(WrapConfig(text), "/ckpt/config.json");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), HasSubstr("/ckpt/config.json text_config"));
  EXPECT_THAT(c.status().message(), HasSubstr("`sliding_window` is required"));
}

TEST(ModelConfigTest, MissingPerLayerInputWidth) {
  const std::string msg = DenseError([](Json& j) { j.erase("hidden_size_per_layer_input"); });
  EXPECT_THAT(msg, HasSubstr("config.json: `hidden_size_per_layer_input` is required"));
}

TEST(ModelConfigTest, MissingLayerTypes) {
  EXPECT_THAT(DenseError([](Json& j) { j.erase("layer_types"); }),
              HasSubstr("`layer_types` is required"));
  EXPECT_THAT(DenseError([](Json& j) { j["layer_types"] = nullptr; }),
              HasSubstr("`layer_types` is required"));
}

TEST(ModelConfigTest, LayerTypesErrors) {
  EXPECT_THAT(DenseError([](Json& j) { j["layer_types"].erase(0); }),
              HasSubstr("has 5 entries but num_hidden_layers is 6"));
  EXPECT_THAT(DenseError([](Json& j) { j["layer_types"][1] = "chunked_attention"; }),
              HasSubstr("unsupported entry \"chunked_attention\""));
  EXPECT_THAT(DenseError([](Json& j) { j["layer_types"] = "full_attention"; }),
              HasSubstr("`layer_types` must be a list"));
}

TEST(ModelConfigTest, LastLayerMustBeGlobal) {
  const std::string msg = DenseError([](Json& j) { j["layer_types"][5] = "sliding_attention"; });
  EXPECT_THAT(msg, HasSubstr("`layer_types` must end with full_attention"));
}

TEST(ModelConfigTest, UnknownRopeType) {
  const std::string msg =
      DenseError([](Json& j) { j["rope_parameters"]["full_attention"]["rope_type"] = "yarn"; });
  EXPECT_THAT(msg, HasSubstr("`rope_parameters.full_attention.rope_type`"));
  EXPECT_THAT(msg, HasSubstr("\"yarn\""));
}

TEST(ModelConfigTest, RopeErrors) {
  EXPECT_THAT(DenseError([](Json& j) { j.erase("rope_parameters"); }),
              HasSubstr("`rope_parameters` is required"));
  EXPECT_THAT(DenseError([](Json& j) { j["rope_parameters"].erase("sliding_attention"); }),
              HasSubstr("`rope_parameters.sliding_attention` is required"));
  EXPECT_THAT(
      DenseError([](Json& j) { j["rope_parameters"]["full_attention"].erase("rope_theta"); }),
      HasSubstr("`rope_parameters.full_attention.rope_theta` is required"));
  EXPECT_THAT(DenseError([](Json& j) { j["rope_parameters"]["full_attention"]["factor"] = 8.0; }),
              HasSubstr("`rope_parameters.full_attention.factor` = 8 is unsupported"));
  EXPECT_THAT(DenseError([](Json& j) {
                j["rope_parameters"]["sliding_attention"]["partial_rotary_factor"] = 0.5;
              }),
              HasSubstr("only supported with rope_type \"proportional\""));
  // A non-string rope_type is an error, not a crash.
  EXPECT_THAT(DenseError([](Json& j) { j["rope_parameters"]["full_attention"]["rope_type"] = 3; }),
              HasSubstr("`rope_parameters.full_attention.rope_type`"));
}

TEST(ModelConfigTest, UnsupportedActivation) {
  const std::string msg = DenseError([](Json& j) { j["hidden_activation"] = "gelu"; });
  EXPECT_THAT(msg, HasSubstr("`hidden_activation` has unsupported value \"gelu\""));
  EXPECT_THAT(DenseError([](Json& j) { j["hidden_activation"] = 1; }),
              HasSubstr("`hidden_activation`"));
}

TEST(ModelConfigTest, InvalidJson) {
  auto c = ParseModelConfig("{\"vocab_size\": ", "/x/config.json");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.status().message(), "/x/config.json: invalid JSON");
  EXPECT_THAT(ParseModelConfig("[1]").status().message(),
              HasSubstr("top level must be a JSON object"));
}

TEST(ModelConfigTest, KEqVNeedsGlobalKvHeads) {
  EXPECT_THAT(DenseError([](Json& j) { j.erase("num_global_key_value_heads"); }),
              HasSubstr("`num_global_key_value_heads` is required"));
  EXPECT_THAT(DenseError([](Json& j) { j["num_global_key_value_heads"] = nullptr; }),
              HasSubstr("`num_global_key_value_heads` is required"));
}

TEST(ModelConfigTest, OtherValidationErrors) {
  EXPECT_THAT(DenseError([](Json& j) { j["hidden_size"] = 0; }),
              HasSubstr("`hidden_size` must be positive, got 0"));
  EXPECT_THAT(DenseError([](Json& j) { j["hidden_size"] = "64"; }),
              HasSubstr("`hidden_size` must be an integer"));
  EXPECT_THAT(DenseError([](Json& j) { j["num_key_value_heads"] = 3; }),
              HasSubstr("does not divide num_attention_heads"));
  EXPECT_THAT(DenseError([](Json& j) { j.erase("final_logit_softcapping"); }),
              HasSubstr("`final_logit_softcapping` is required (use null for no cap)"));
  EXPECT_THAT(DenseError([](Json& j) { j["attention_bias"] = true; }),
              HasSubstr("`attention_bias` = true is unsupported"));
  EXPECT_THAT(DenseError([](Json& j) { j["attn_logit_softcapping"] = 50.0; }),
              HasSubstr("`attn_logit_softcapping` is unsupported"));
  EXPECT_THAT(DenseError([](Json& j) { j["use_bidirectional_attention"] = "all"; }),
              HasSubstr("`use_bidirectional_attention` has unsupported value"));
  EXPECT_THAT(DenseError([](Json& j) { j["model_type"] = "gemma3_text"; }),
              HasSubstr("`model_type` has unsupported value \"gemma3_text\""));
  EXPECT_THAT(DenseError([](Json& j) {
                j["enable_moe_block"] = true;
                j["num_experts"] = 2;
                j["top_k_experts"] = 4;
                j["moe_intermediate_size"] = 8;
              }),
              HasSubstr("`top_k_experts` = 4 exceeds num_experts = 2"));
  EXPECT_THAT(DenseError([](Json& j) { j["num_kv_shared_layers"] = 6; }),
              HasSubstr("`num_kv_shared_layers` = 6 must be in [0, num_hidden_layers)"));
  // Sharing every layer but the first leaves the shared global layers without a donor.
  EXPECT_THAT(DenseError([](Json& j) { j["num_kv_shared_layers"] = 5; }),
              HasSubstr("without an earlier non-shared layer of its type"));
  // Integers too large for the engine's int fields are rejected, not truncated.
  EXPECT_THAT(DenseError([](Json& j) { j["num_hidden_layers"] = int64_t{1} << 32; }),
              HasSubstr("`num_hidden_layers`"));
  EXPECT_THAT(DenseError([](Json& j) { j["num_key_value_heads"] = int64_t{1} << 32; }),
              HasSubstr("`num_key_value_heads`"));
}

TEST(ModelConfigTest, NullStringKeysMeanDefault) {
  Json j = TinyDenseJson();
  j["hidden_activation"] = nullptr;
  j["rope_parameters"]["sliding_attention"]["rope_type"] = nullptr;
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rope_sliding.type, RopeType::kDefault);
}

// transformers >= 5.2x re-saves the global geometry as `per_layer_config`.
Json DensePerLayerConfig() {
  Json j = TinyDenseJson();
  j.erase("global_head_dim");
  j.erase("num_global_key_value_heads");
  j["per_layer_config"] = {{"2", {{"head_dim", 32}, {"num_key_value_heads", 1}}},
                           {"5", {{"head_dim", 32}, {"num_key_value_heads", 1}}}};
  return j;
}

TEST(ModelConfigTest, PerLayerConfigFallback) {
  auto c = ParseModelConfig(DensePerLayerConfig().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->global_head_dim, 32);
  EXPECT_EQ(c->num_global_kv_heads, 1);
  EXPECT_EQ(c->HeadDim(5), 32);
  EXPECT_EQ(c->NumKvHeads(5), 1);
  EXPECT_EQ(c->NumKvHeads(4), 2);
}

TEST(ModelConfigTest, PerLayerConfigErrors) {
  auto error = [](auto edit) {
    Json j = DensePerLayerConfig();
    edit(j);
    auto c = ParseModelConfig(j.dump());
    return c.ok() ? std::string() : std::string(c.status().message());
  };
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"].erase("5"); }),
              HasSubstr("has no entry for full_attention layer 5"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"]["5"]["head_dim"] = 64; }),
              HasSubstr("differs from another full_attention layer"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"]["1"] = {{"head_dim", 64}}; }),
              HasSubstr("overrides a sliding layer's geometry"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"]["x"] = Json::object(); }),
              HasSubstr("`per_layer_config.x` is not a layer index"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"]["2"]["sliding_window"] = 8; }),
              HasSubstr("unsupported per-layer override"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"]["2"]["head_dim"] = "32"; }),
              HasSubstr("must be a positive integer"));
  EXPECT_THAT(error([](Json& j) { j["per_layer_config"] = 3; }),
              HasSubstr("`per_layer_config` must be an object"));
}

TEST(ModelConfigTest, NullSoftcapMeansNoCap) {
  Json j = TinyDenseJson();
  j["final_logit_softcapping"] = nullptr;
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->final_logit_softcapping.has_value());
}

TEST(ModelConfigTest, DefaultsForOptionalKeys) {
  Json j = TinyDenseJson();
  for (const char* key :
       {"rms_norm_eps", "tie_word_embeddings", "attention_bias", "hidden_activation",
        "num_global_key_value_heads", "enable_moe_block",
        "num_kv_shared_layers", "use_double_wide_mlp", "pad_token_id", "bos_token_id",
        "eos_token_id", "use_bidirectional_attention"}) {
    j.erase(key);
  }
  j["attention_k_eq_v"] = false;  // required (released models differ); false needs no global KV count
  auto c = ParseModelConfig(j.dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_FALSE(c->attention_k_eq_v);
  EXPECT_EQ(c->NumKvHeads(5), 2);
  EXPECT_FALSE(c->enable_moe_block);
  EXPECT_EQ(c->num_kv_shared_layers, 0);
  EXPECT_EQ(c->pad_token_id, 0);
  EXPECT_EQ(c->bos_token_id, 2);
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(ModelConfigTest, AttentionKEqVIsRequired) {
  Json j = TinyDenseJson();
  j.erase("attention_k_eq_v");
  EXPECT_THAT(ParseModelConfig(j.dump()).status().message(), HasSubstr("attention_k_eq_v"));
}

// ---------------------------------------------------------------- real configs

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ModelConfigTest, Real31B) {
  const std::string text = ReadFile("tests/data/configs/gemma-4-31B.json");
  ASSERT_FALSE(text.empty()) << "run from the repository root";
  auto c = ParseModelConfig(text, "gemma-4-31B.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->vocab_size, 262144);
  EXPECT_EQ(c->hidden_size, 5376);
  EXPECT_EQ(c->intermediate_size, 21504);
  EXPECT_EQ(c->num_layers, 60);
  EXPECT_EQ(c->num_heads, 32);
  EXPECT_EQ(c->sliding_window, 1024);
  EXPECT_EQ(c->max_position_embeddings, 262144);
  EXPECT_EQ(*c->final_logit_softcapping, 30.0);
  EXPECT_FALSE(c->enable_moe_block);
  EXPECT_EQ(c->hidden_size_per_layer_input, 0);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1, 106));
  EXPECT_EQ(c->NumLayersOfType(S), 50);
  EXPECT_EQ(c->NumLayersOfType(F), 10);
  for (int l = 0; l < 60; ++l) EXPECT_EQ(c->IsGlobal(l), l % 6 == 5) << l;
  // gemma4-text.md §1.3.
  EXPECT_EQ(c->HeadDim(0), 256);
  EXPECT_EQ(c->HeadDim(5), 512);
  EXPECT_EQ(c->NumKvHeads(0), 16);
  EXPECT_EQ(c->NumKvHeads(5), 4);
  EXPECT_TRUE(c->HasVProj(0));
  EXPECT_FALSE(c->HasVProj(5));
  EXPECT_EQ(c->num_heads * c->HeadDim(0), 8192);    // q_proj out, sliding
  EXPECT_EQ(c->num_heads * c->HeadDim(59), 16384);  // q_proj out, global
  EXPECT_EQ(c->NumKvHeads(0) * c->HeadDim(0), 4096);
  EXPECT_EQ(c->NumKvHeads(59) * c->HeadDim(59), 2048);
  EXPECT_EQ(c->Rope(0).theta, 1e4);
  EXPECT_EQ(c->Rope(5).theta, 1e6);
  EXPECT_EQ(c->Rope(5).type, RopeType::kProportional);
  EXPECT_EQ(c->Rope(5).partial_rotary_factor, 0.25);
  EXPECT_EQ(c->MlpWidth(10), 21504);
  EXPECT_EQ(c->KvSourceLayer(59), 59);
}

TEST(ModelConfigTest, Real26BA4B) {
  const std::string text = ReadFile("tests/data/configs/gemma-4-26B-A4B.json");
  ASSERT_FALSE(text.empty()) << "run from the repository root";
  auto c = ParseModelConfig(text, "gemma-4-26B-A4B.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 2816);
  EXPECT_EQ(c->intermediate_size, 2112);
  EXPECT_EQ(c->num_layers, 30);
  EXPECT_EQ(c->num_heads, 16);
  EXPECT_TRUE(c->enable_moe_block);
  EXPECT_EQ(c->num_experts, 128);
  EXPECT_EQ(c->top_k_experts, 8);
  EXPECT_EQ(c->moe_intermediate_size, 704);
  EXPECT_EQ(c->NumLayersOfType(S), 25);
  EXPECT_EQ(c->NumLayersOfType(F), 5);
  for (int l : {5, 11, 17, 23, 29}) EXPECT_TRUE(c->IsGlobal(l)) << l;
  EXPECT_EQ(c->HeadDim(0), 256);
  EXPECT_EQ(c->HeadDim(29), 512);
  EXPECT_EQ(c->NumKvHeads(0), 8);
  EXPECT_EQ(c->NumKvHeads(29), 2);
  EXPECT_FALSE(c->HasVProj(29));
  EXPECT_EQ(c->num_heads * c->HeadDim(0), 4096);
  EXPECT_EQ(c->num_heads * c->HeadDim(5), 8192);
  EXPECT_EQ(c->NumKvHeads(0) * c->HeadDim(0), 2048);
  EXPECT_EQ(c->NumKvHeads(5) * c->HeadDim(5), 1024);
  EXPECT_THAT(c->eos_token_ids, ElementsAre(1, 106));
}

}  // namespace
}  // namespace g4
