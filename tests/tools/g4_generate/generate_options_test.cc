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
  EXPECT_FALSE(o->sampling.ignore_eos);
}

TEST(GenerateOptionsTest, AcceptsEqualsForm) {
  auto o = Parse({"--model=m", "--prompt-tokens=7", "--max-new-tokens=0", "--ignore-eos"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_THAT(o->prompt_tokens, ElementsAre(7));
  EXPECT_TRUE(o->sampling.ignore_eos);
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

namespace g4 {
namespace {

TEST(GenerateOptionsTest, TextChatAndSamplingFlags) {
  auto o = ParseGenerateOptions(std::vector<const char*>{
      "--model", "m", "--chat", "Hi there", "--max-new-tokens", "4", "--temperature", "0.7",
      "--top-k", "40", "--top-p", "0.9", "--min-p", "0.05", "--seed", "7", "--stop", "END",
      "--stop", "\n\n", "--repetition-penalty", "1.1", "--presence-penalty", "0.5",
      "--frequency-penalty", "0.25"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(*o->chat_text, "Hi there");
  EXPECT_DOUBLE_EQ(*o->sampling.temperature, 0.7);
  EXPECT_EQ(*o->sampling.top_k, 40);
  EXPECT_DOUBLE_EQ(*o->sampling.top_p, 0.9);
  EXPECT_DOUBLE_EQ(*o->sampling.min_p, 0.05);
  EXPECT_EQ(*o->sampling.seed, 7u);
  EXPECT_THAT(o->sampling.stop, ElementsAre("END", "\n\n"));
  EXPECT_DOUBLE_EQ(*o->sampling.repetition_penalty, 1.1);
}

TEST(GenerateOptionsTest, GreedyByDefaultAndOnePromptForm) {
  auto o = ParseGenerateOptions(std::vector<const char*>{"--model", "m", "--prompt", "x",
                                                         "--max-new-tokens", "1"});
  ASSERT_TRUE(o.ok());
  EXPECT_DOUBLE_EQ(*o->sampling.temperature, 0.0);
  EXPECT_THAT(ParseGenerateOptions(std::vector<const char*>{"--model", "m", "--prompt", "x",
                                                            "--chat", "y", "--max-new-tokens", "1"})
                  .status()
                  .message(),
              HasSubstr("only one"));
  EXPECT_THAT(ParseGenerateOptions(std::vector<const char*>{"--model", "m", "--prompt", "x",
                                                            "--max-new-tokens", "1", "--top-p",
                                                            "abc"})
                  .status()
                  .message(),
              HasSubstr("--top-p"));
}

}  // namespace
}  // namespace g4
