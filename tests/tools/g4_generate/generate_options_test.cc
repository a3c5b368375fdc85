#include "tools/g4_generate/generate_options.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<GenerateOptions> Parse(std::vector<const char*> args) {
  return ParseGenerateOptions(args);
}

TEST(GenerateOptionsTest, ParsesTheContract) {
  auto o = Parse({"--model", "m", "--prompt-tokens", "2,651,1234", "--max-new-tokens", "5",
                  "--logits-out", "f.jsonl"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->model_dir, "m");
  EXPECT_THAT(o->prompt_tokens, ElementsAre(2, 651, 1234));
  EXPECT_EQ(o->max_new_tokens, 5);
  EXPECT_EQ(o->logits_out, "f.jsonl");
  EXPECT_FALSE(o->ignore_eos);
}

TEST(GenerateOptionsTest, AcceptsEqualsForm) {
  auto o = Parse({"--model=m", "--prompt-tokens=7", "--max-new-tokens=0", "--ignore-eos"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->prompt_tokens, ElementsAre(7));
  EXPECT_TRUE(o->ignore_eos);
}

TEST(GenerateOptionsTest, ErrorsNameTheFlag) {
  EXPECT_THAT(Parse({"--prompt-tokens", "1", "--max-new-tokens", "1"}).status().message(),
              HasSubstr("--model"));
  EXPECT_THAT(Parse({"--model", "m", "--max-new-tokens", "1"}).status().message(),
              HasSubstr("--prompt-tokens"));
  EXPECT_THAT(Parse({"--model", "m", "--prompt-tokens", "1"}).status().message(),
              HasSubstr("--max-new-tokens"));
  EXPECT_THAT(Parse({"--model", "m", "--prompt-tokens", "1,x", "--max-new-tokens", "1"})
                  .status().message(),
              HasSubstr("\"x\""));
  EXPECT_THAT(Parse({"--model", "m", "--prompt-tokens", "1,,2", "--max-new-tokens", "1"})
                  .status().message(),
              HasSubstr("--prompt-tokens"));
  EXPECT_THAT(Parse({"--model", "m", "--prompt-tokens", "1", "--max-new-tokens", "-3"})
                  .status().message(),
              HasSubstr("--max-new-tokens"));
  EXPECT_THAT(Parse({"--model"}).status().message(), HasSubstr("needs a value"));
  EXPECT_THAT(Parse({"--bogus"}).status().message(), HasSubstr("unknown flag"));
}

}  // namespace
}  // namespace g4
