#include "common/checkpoint.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/safetensors_writer.h"
#include "tests/common/test_configs.h"

namespace g4 {
namespace {

using ::g4::testing_util::Iota;
using ::g4::testing_util::SafetensorsWriter;
using ::g4::testing_util::ScopedTempDir;
using ::g4::testing_util::TinyDenseJson;
using ::g4::testing_util::WrapConfig;
using ::g4::testing_util::WriteOptions;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(tmp_.ok()); }

  void WriteText(const std::string& name, const std::string& text) {
    ASSERT_TRUE(SafetensorsWriter::WriteFile(tmp_.File(name), text));
  }
  void WriteTextOnlyConfig() { WriteText("config.json", TinyDenseJson().dump(2)); }
  void WriteWrapperConfig() { WriteText("config.json", WrapConfig(TinyDenseJson())); }

  // The same small set of decoder tensors under `prefix`.
  static void AddDecoder(SafetensorsWriter& w, const std::string& prefix) {
    w.AddBf16(prefix + "embed_tokens.weight", {8, 4}, Iota(32));
    w.AddF32(prefix + "layers.0.self_attn.q_proj.weight", {4, 4}, Iota(16, 100));
    w.AddF32(prefix + "layers.0.layer_scalar", {1}, {0.5f});
    w.AddBf16(prefix + "norm.weight", {4}, {1, 2, 3, 4});
  }

  absl::StatusOr<std::unique_ptr<Checkpoint>> Open() { return Checkpoint::Open(tmp_.path()); }

  ScopedTempDir tmp_;
};

TEST_F(CheckpointTest, SingleFileTextOnlyWithModelPrefix) {
  WriteTextOnlyConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));

  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const Checkpoint& c = **ckpt;
  EXPECT_EQ(c.dir(), tmp_.path());
  EXPECT_EQ(c.config().num_layers, 6);
  EXPECT_EQ(c.config().hidden_size, 64);
  EXPECT_THAT(c.config().eos_token_ids, ElementsAre(1));
  // No generation_config.json: the engine defaults.
  EXPECT_THAT(c.generation_config().eos_token_ids, ElementsAre(1, 106, 50));

  EXPECT_TRUE(c.Has("embed_tokens.weight"));
  EXPECT_TRUE(c.Has("layers.0.layer_scalar"));
  EXPECT_FALSE(c.Has("lm_head.weight"));
  EXPECT_FALSE(c.Has("layers.1.layer_scalar"));

  auto ref = c.Find("layers.0.self_attn.q_proj.weight");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->info->name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(ref->file->path(), tmp_.File("model.safetensors"));

  auto emb = c.ReadAll("embed_tokens.weight", {8, 4});
  ASSERT_TRUE(emb.ok()) << emb.status();
  EXPECT_THAT(*emb, ElementsAreArray(Iota(32)));
  EXPECT_EQ(c.bytes_read(), 32u * 2);

  // A row shard of q_proj.
  std::vector<float> q(8);
  ASSERT_TRUE(
      c.Read("layers.0.self_attn.q_proj.weight", {4, 4}, TensorSlice::Rows(2, 4), absl::MakeSpan(q))
          .ok());
  EXPECT_THAT(q, ElementsAreArray(Iota(8, 108)));
  EXPECT_EQ(c.bytes_read(), 32u * 2 + 8u * 4);

  auto scalar = c.ReadAll("layers.0.layer_scalar", {1});
  ASSERT_TRUE(scalar.ok());
  EXPECT_THAT(*scalar, ElementsAre(0.5f));
}

TEST_F(CheckpointTest, GenerationConfigIsRead) {
  WriteTextOnlyConfig();
  WriteText("generation_config.json",
            R"({"eos_token_id": [1, 106, 50], "do_sample": true, "temperature": 1.0,
                "top_k": 64, "top_p": 0.95, "bos_token_id": 2, "pad_token_id": 0})");
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const GenerationConfig& g = (*ckpt)->generation_config();
  EXPECT_TRUE(g.do_sample);
  EXPECT_EQ(g.top_k, 64);
  EXPECT_EQ(g.temperature, 1.0);
  EXPECT_EQ(g.top_p, 0.95);
}

TEST_F(CheckpointTest, BadGenerationConfigNamesFile) {
  WriteTextOnlyConfig();
  WriteText("generation_config.json", R"({"top_k": "many"})");
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.File("generation_config.json")));
}

TEST_F(CheckpointTest, WrapperConfigWithLanguageModelPrefix) {
  WriteWrapperConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.language_model.");
  w.AddF32("model.vision_tower.x", {2}, {1, 2});
  w.AddF32("model.embed_vision.y", {2}, {1, 2});
  w.AddF32("model.audio_tower.z", {2}, {1, 2});
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));

  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const Checkpoint& c = **ckpt;
  // The root's instruction-tuned eos ids win over text_config's.
  EXPECT_THAT(c.config().eos_token_ids, ElementsAre(1, 106));
  EXPECT_TRUE(c.config().tie_word_embeddings);
  EXPECT_TRUE(c.Has("norm.weight"));
  auto ref = c.Find("norm.weight");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->info->name, "model.language_model.norm.weight");
  auto norm = c.ReadAll("norm.weight", {4});
  ASSERT_TRUE(norm.ok());
  EXPECT_THAT(*norm, ElementsAre(1, 2, 3, 4));

  // Vision/audio tensors are never resolved, under any spelling.
  EXPECT_FALSE(c.Has("vision_tower.x"));
  EXPECT_FALSE(c.Has("model.vision_tower.x"));
  EXPECT_FALSE(c.Has("embed_vision.y"));
  EXPECT_FALSE(c.Has("audio_tower.z"));
  EXPECT_EQ(c.Find("vision_tower.x").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, BareLmHead) {
  WriteWrapperConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.language_model.");
  w.AddBf16("lm_head.weight", {8, 4}, Iota(32, 1));
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_TRUE((*ckpt)->Has("lm_head.weight"));
  EXPECT_EQ((*ckpt)->Find("lm_head.weight")->info->name, "lm_head.weight");
  auto head = (*ckpt)->ReadAll("lm_head.weight", {8, 4});
  ASSERT_TRUE(head.ok());
  EXPECT_THAT(*head, ElementsAreArray(Iota(32, 1)));
}

TEST_F(CheckpointTest, LanguageModelPrefixWinsOverModelPrefix) {
  WriteWrapperConfig();
  SafetensorsWriter w;
  w.AddF32("model.language_model.norm.weight", {2}, {1, 2});
  w.AddF32("model.norm.weight", {2}, {3, 4});
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_THAT(*(*ckpt)->ReadAll("norm.weight", {2}), ElementsAre(1, 2));
}

TEST_F(CheckpointTest, ShardedWithIndex) {
  WriteWrapperConfig();
  SafetensorsWriter s1, s2;
  s1.AddBf16("model.language_model.embed_tokens.weight", {8, 4}, Iota(32));
  s1.AddF32("model.language_model.layers.0.layer_scalar", {1}, {0.25f});
  s2.AddBf16("model.language_model.layers.1.experts.down_proj", {3, 4, 2}, Iota(24));
  s2.AddF32("model.vision_tower.patch.weight", {2}, {1, 2});
  ASSERT_TRUE(s1.Write(tmp_.File("model-00001-of-00002.safetensors")));
  ASSERT_TRUE(s2.Write(tmp_.File("model-00002-of-00002.safetensors")));
  WriteText("model.safetensors.index.json", R"({
    "metadata": {"total_size": 184},
    "weight_map": {
      "model.language_model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.language_model.layers.0.layer_scalar": "model-00001-of-00002.safetensors",
      "model.language_model.layers.1.experts.down_proj": "model-00002-of-00002.safetensors",
      "model.vision_tower.patch.weight": "model-00002-of-00002.safetensors"
    }})");

  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const Checkpoint& c = **ckpt;
  auto a = c.Find("embed_tokens.weight");
  auto b = c.Find("layers.1.experts.down_proj");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_THAT(a->file->path(), HasSubstr("model-00001-of-00002.safetensors"));
  EXPECT_THAT(b->file->path(), HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_FALSE(c.Has("vision_tower.patch.weight"));

  // One expert only: exactly its bytes are read.
  std::vector<float> expert(8);
  ASSERT_TRUE(c.Read("layers.1.experts.down_proj", {3, 4, 2}, TensorSlice::Expert(2),
                     absl::MakeSpan(expert))
                  .ok());
  EXPECT_THAT(expert, ElementsAreArray(Iota(8, 16)));
  EXPECT_EQ(c.bytes_read(), 8u * 2);

  auto all = c.ReadAll("layers.1.experts.down_proj", {3, 4, 2});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, ElementsAreArray(Iota(24)));
  auto scalar = c.ReadAll("layers.0.layer_scalar", {1});
  ASSERT_TRUE(scalar.ok());
  EXPECT_THAT(*scalar, ElementsAre(0.25f));
  EXPECT_EQ(c.bytes_read(), 8u * 2 + 24u * 2 + 4u);
}

TEST_F(CheckpointTest, MissingShard) {
  WriteWrapperConfig();
  SafetensorsWriter s1;
  AddDecoder(s1, "model.language_model.");
  ASSERT_TRUE(s1.Write(tmp_.File("model-00001-of-00002.safetensors")));
  WriteText("model.safetensors.index.json", R"({"metadata": {}, "weight_map": {
      "model.language_model.embed_tokens.weight": "model-00001-of-00002.safetensors",
      "model.language_model.layers.5.mlp.down_proj.weight": "model-00002-of-00002.safetensors"
    }})");
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr("model-00002-of-00002.safetensors"));
  EXPECT_THAT(ckpt.status().message(),
              HasSubstr("model.language_model.layers.5.mlp.down_proj.weight"));
}

TEST_F(CheckpointTest, IndexNamesTensorAbsentFromShard) {
  WriteWrapperConfig();
  SafetensorsWriter s1;
  AddDecoder(s1, "model.language_model.");
  ASSERT_TRUE(s1.Write(tmp_.File("model-00001-of-00001.safetensors")));
  WriteText("model.safetensors.index.json", R"({"weight_map": {
      "model.language_model.embed_tokens.weight": "model-00001-of-00001.safetensors",
      "model.language_model.layers.3.self_attn.k_proj.weight": "model-00001-of-00001.safetensors"
    }})");
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(),
              HasSubstr("\"model.language_model.layers.3.self_attn.k_proj.weight\""));
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.File("model-00001-of-00001.safetensors")));
  EXPECT_THAT(ckpt.status().message(), HasSubstr("does not contain it"));
}

TEST_F(CheckpointTest, BadIndex) {
  WriteTextOnlyConfig();
  WriteText("model.safetensors.index.json", "{\"weight_map\": ");
  EXPECT_THAT(Open().status().message(), HasSubstr("model.safetensors.index.json: invalid JSON"));
  WriteText("model.safetensors.index.json", R"({"metadata": {}})");
  EXPECT_THAT(Open().status().message(), HasSubstr("`weight_map` is required"));
  WriteText("model.safetensors.index.json", R"({"weight_map": {"a": 3}})");
  EXPECT_THAT(Open().status().message(), HasSubstr("must be a string"));
  WriteText("model.safetensors.index.json", R"({"weight_map": {"a": "../x.safetensors"}})");
  EXPECT_THAT(Open().status().message(), HasSubstr("not a file name inside"));
}

TEST_F(CheckpointTest, MissingConfig) {
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.File("config.json")));
}

TEST_F(CheckpointTest, InvalidConfigNamesFile) {
  WriteText("config.json", "{not json");
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.File("config.json") + ": invalid JSON"));
}

TEST_F(CheckpointTest, NoWeights) {
  WriteTextOnlyConfig();
  auto ckpt = Open();
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.path()));
  EXPECT_THAT(ckpt.status().message(), HasSubstr("model.safetensors"));
}

TEST_F(CheckpointTest, MissingDirectory) {
  auto ckpt = Checkpoint::Open(tmp_.File("does-not-exist"));
  EXPECT_EQ(ckpt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(ckpt.status().message(), HasSubstr("does-not-exist"));
}

TEST_F(CheckpointTest, WrongShapeNamesExpectedAndFound) {
  WriteTextOnlyConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<float> out(40);
  absl::Status s =
      (*ckpt)->Read("embed_tokens.weight", {8, 5}, TensorSlice::All(), absl::MakeSpan(out));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(),
              HasSubstr("tensor \"model.embed_tokens.weight\" in " +
                        tmp_.File("model.safetensors") + ": expected shape [8, 5], found [8, 4]"));
  // Rank mismatch too.
  auto r = (*ckpt)->ReadAll("norm.weight", {1, 4});
  EXPECT_THAT(r.status().message(), HasSubstr("expected shape [1, 4], found [4]"));
  EXPECT_EQ((*ckpt)->bytes_read(), 0u);
}

TEST_F(CheckpointTest, MissingTensorNamesPrefixesAndDir) {
  WriteWrapperConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.language_model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Open();
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  auto ref = (*ckpt)->Find("layers.9.mlp.gate_proj.weight");
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kNotFound);
  const std::string msg(ref.status().message());
  EXPECT_THAT(msg, HasSubstr("tensor \"layers.9.mlp.gate_proj.weight\" not found"));
  EXPECT_THAT(msg, HasSubstr("\"model.language_model.layers.9.mlp.gate_proj.weight\""));
  EXPECT_THAT(msg, HasSubstr("\"model.layers.9.mlp.gate_proj.weight\""));
  EXPECT_THAT(msg, HasSubstr(tmp_.path()));
  std::vector<float> out(1);
  EXPECT_EQ((*ckpt)->Read("nope", {1}, TensorSlice::All(), absl::MakeSpan(out)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ((*ckpt)->ReadAll("nope", {1}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CheckpointTest, TruncatedSafetensorsNamesFile) {
  WriteTextOnlyConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  WriteOptions cut;
  cut.truncate_to = w.Build().size() - 3;
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors"), cut));
  auto ckpt = Open();
  EXPECT_FALSE(ckpt.ok());
  EXPECT_THAT(ckpt.status().message(), HasSubstr(tmp_.File("model.safetensors")));
  EXPECT_THAT(ckpt.status().message(), HasSubstr("outside the byte buffer"));
}

TEST_F(CheckpointTest, TrailingSlashInDir) {
  WriteTextOnlyConfig();
  SafetensorsWriter w;
  AddDecoder(w, "model.");
  ASSERT_TRUE(w.Write(tmp_.File("model.safetensors")));
  auto ckpt = Checkpoint::Open(tmp_.path() + "/");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE((*ckpt)->Has("embed_tokens.weight"));
}

}  // namespace
}  // namespace g4
