// config.json re-saved by transformers >= 5.2x moves the global-layer geometry into
// `per_layer_config`; the loader accepts that layout as well.
#include <string>

#include "common/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using ::testing::HasSubstr;

nlohmann::json TinyConfig() {
  return nlohmann::json::parse(R"({
    "vocab_size": 512, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 6,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
    "attention_k_eq_v": true, "sliding_window": 4, "max_position_embeddings": 512,
    "layer_types": ["sliding_attention", "sliding_attention", "full_attention",
                    "sliding_attention", "sliding_attention", "full_attention"],
    "rope_parameters": {
      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
      "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                         "rope_theta": 1000000.0}},
    "final_logit_softcapping": 2.0, "hidden_size_per_layer_input": 0,
    "per_layer_config": {"2": {"head_dim": 32, "num_key_value_heads": 1},
                         "5": {"head_dim": 32, "num_key_value_heads": 1}}
  })");
}

TEST(PerLayerConfigTest, GlobalGeometryComesFromPerLayerConfig) {
  auto c = ParseModelConfig(TinyConfig().dump());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->global_head_dim, 32);
  EXPECT_EQ(c->num_global_kv_heads, 1);
  EXPECT_EQ(c->HeadDim(2), 32);
  EXPECT_EQ(c->NumKvHeads(5), 1);
  EXPECT_EQ(c->NumKvHeads(0), 2);
}

TEST(PerLayerConfigTest, RejectsInconsistentOverrides) {
  nlohmann::json j = TinyConfig();
  j["per_layer_config"]["5"]["head_dim"] = 64;
  EXPECT_THAT(ParseModelConfig(j.dump()).status().message(), HasSubstr("per_layer_config.5"));
  j = TinyConfig();
  j["per_layer_config"]["0"] = {{"head_dim", 8}};
  EXPECT_THAT(ParseModelConfig(j.dump()).status().message(), HasSubstr("sliding layer"));
  j = TinyConfig();
  j["per_layer_config"].erase("5");
  EXPECT_THAT(ParseModelConfig(j.dump()).status().message(), HasSubstr("layer 5"));
  j = TinyConfig();
  j["per_layer_config"]["2"]["sliding_window"] = 3;
  EXPECT_THAT(ParseModelConfig(j.dump()).status().message(), HasSubstr("unsupported"));
}

}  // namespace
}  // namespace g4
