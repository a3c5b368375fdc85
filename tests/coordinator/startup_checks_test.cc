#include "coordinator/startup_checks.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "common/model_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/temp_dir.h"

namespace g4 {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kDense[] = "tests/data/golden/dense";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ModelConfig Config(const std::string& dir) {
  absl::StatusOr<ModelConfig> c = ParseModelConfig(Read(dir + "/config.json"), dir);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// A copy of the dense checkpoint, with config.json edited by `edit`.
class ModelDir {
 public:
  explicit ModelDir(const std::function<void(nlohmann::json&)>& edit, bool weights = true) {
    dir_ = temp_dir_.path();
    nlohmann::json config = nlohmann::json::parse(Read(std::string(kDense) + "/config.json"));
    edit(config);
    std::ofstream(dir_ + "/config.json") << config.dump();
    if (weights) {
      fs::copy_file(std::string(kDense) + "/model.safetensors", dir_ + "/model.safetensors");
    }
  }
  const std::string& path() const { return dir_; }

 private:
  g4::testing::ScopedTempDir temp_dir_{"startup_checks"};
  std::string dir_;
};

TEST(CheckCheckpointTest, AcceptsTheGoldenCheckpoints) {
  for (const char* dir :
       {"tests/data/golden/dense", "tests/data/golden/moe", "tests/data/golden/efeat",
        "tests/data/golden/dense-bf16", "tests/data/golden/dense-wrapper"}) {
    EXPECT_TRUE(CheckCheckpoint(dir, Config(dir)).ok()) << dir;
  }
}

TEST(CheckCheckpointTest, NoWeightsIsAnError) {
  ModelDir dir([](nlohmann::json&) {}, /*weights=*/false);
  absl::Status s = CheckCheckpoint(dir.path(), Config(dir.path()));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("model.safetensors"));
}

TEST(CheckCheckpointTest, WeightsOfAnotherConfigAreAnError) {
  ModelDir more_layers([](nlohmann::json& c) {
    c["num_hidden_layers"] = 7;
    c["layer_types"].push_back("full_attention");
  });
  absl::StatusOr<ModelConfig> config =
      ParseModelConfig(Read(more_layers.path() + "/config.json"), more_layers.path());
  ASSERT_TRUE(config.ok()) << config.status();
  absl::Status s = CheckCheckpoint(more_layers.path(), *config);
  EXPECT_THAT(s.message(), HasSubstr("no weights for layer 6"));

  ModelDir other_vocab([](nlohmann::json& c) {
    c["vocab_size"] = 1024;
    c["vocab_size_per_layer_input"] = 1024;
  });
  s = CheckCheckpoint(other_vocab.path(), Config(other_vocab.path()));
  EXPECT_THAT(s.message(), HasSubstr("embed_tokens.weight"));
  EXPECT_THAT(s.message(), HasSubstr("vocab_size"));
}

FleetOptions Options(const std::string& dir, int tp, int ep = 1) {
  FleetOptions o;
  o.model_dir = dir;
  o.model_config = Config(dir);
  o.tensor_parallel_size = tp;
  o.expert_parallel_size = ep;
  return o;
}

TEST(CheckPlanShapeTest, DegreesMustDivideTheModel) {
  EXPECT_TRUE(CheckPlanShape(Options(kDense, 1)).ok());
  EXPECT_TRUE(CheckPlanShape(Options(kDense, 2)).ok());
  absl::Status s = CheckPlanShape(Options(kDense, 3));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--tensor-parallel-size 3: num_attention_heads = 4"));
  s = CheckPlanShape(Options(kDense, 2, /*ep=*/2));
  EXPECT_THAT(s.message(), HasSubstr("--expert-parallel-size 2"));
  // The real 31B config: 8 ranks work whatever the memory (checked later); 3 never do.
  EXPECT_TRUE(CheckPlanShape(Options("tests/data/models/gemma-4-31B", 8)).ok());
  EXPECT_FALSE(CheckPlanShape(Options("tests/data/models/gemma-4-31B", 3)).ok());
}

TEST(CheckPlanShapeTest, ContextBeyondTheModelIsAnError) {
  FleetOptions o = Options(kDense, 1);
  o.engine.set_max_model_len(100000);
  absl::Status s = CheckPlanShape(o);
  EXPECT_THAT(s.message(), HasSubstr("--max-model-len 100000"));
  o.engine.set_max_model_len(256);
  EXPECT_TRUE(CheckPlanShape(o).ok());
}

}  // namespace
}  // namespace g4
