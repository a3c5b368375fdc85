#include "tools/prompt_input/prompt_input.h"

#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Write(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

TEST(PromptInputTest, TokenIdsInEveryAcceptedLayout) {
  EXPECT_THAT(*ParsePromptTokens("2,17, 99\n", "x"), ElementsAre(2, 17, 99));
  EXPECT_THAT(*ParsePromptTokens("2 17\t99\r\n", "x"), ElementsAre(2, 17, 99));
  EXPECT_THAT(*ParsePromptTokens(" [2, 17, 99] ", "x"), ElementsAre(2, 17, 99));
  EXPECT_THAT(ParsePromptTokens("2,x7", "f.ids").status().message(),
              HasSubstr("f.ids: entry 1 \"x7\" is not a token id"));
  EXPECT_THAT(ParsePromptTokens("2,-1", "f").status().message(), HasSubstr("entry 1"));
  EXPECT_THAT(ParsePromptTokens(" \n", "f").status().message(), HasSubstr("no token ids"));
  EXPECT_THAT(ParsePromptTokens("[1,2", "f").status().message(), HasSubstr("closing"));
}

TEST(PromptInputTest, ReadsFilesLongerThanOneArgumentMayBe) {
  std::string ids;
  for (int i = 0; i < 32768; ++i) ids += (i ? "," : "") + std::to_string(1000 + i % 400);
  ASSERT_GT(ids.size(), 128u * 1024);  // beyond Linux's limit for one argument
  absl::StatusOr<std::vector<int32_t>> got = ReadPromptTokens(Write("long.ids", ids));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->size(), 32768u);
  EXPECT_EQ((*got)[32767], 1000 + 32767 % 400);
  absl::StatusOr<std::string> text = ReadPromptText(Write("p.txt", "line one\nline two\n"));
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "line one\nline two\n");
  EXPECT_EQ(ReadPromptText("/nonexistent/p.txt").status().code(), absl::StatusCode::kNotFound);
}

TEST(PromptInputTest, PromptsFileOfTextsAndIdLists) {
  absl::StatusOr<std::vector<Prompt>> got =
      ReadPromptsFile(Write("p.jsonl", "\"hello\\nworld\"\n\n[2, 5, 7]\n"));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ(std::get<std::string>((*got)[0]), "hello\nworld");
  EXPECT_THAT(std::get<std::vector<int32_t>>((*got)[1]), ElementsAre(2, 5, 7));
  EXPECT_THAT(ReadPromptsFile(Write("bad.jsonl", "\"ok\"\n{\"prompt\": 1}\n")).status().message(),
              HasSubstr("bad.jsonl:2"));
  EXPECT_THAT(ReadPromptsFile(Write("neg.jsonl", "[1, -2]\n")).status().message(),
              HasSubstr("token ids must be integers"));
  EXPECT_THAT(ReadPromptsFile(Write("empty.jsonl", "\n")).status().message(),
              HasSubstr("no prompts"));
}

}  // namespace
}  // namespace g4
