// g4-generate as a user runs it: the output contract, and errors (one stderr line, exit 2).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"
#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;

using Result = ::g4::testing::RunResult;

Result RunGenerate(const std::string& args) {
  return ::g4::testing::RunBinary(G4_GENERATE_BIN, args);
}

std::string LastLine(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

TEST(G4GenerateCliTest, GreedyTokensAndLogitsMatchTransformers) {
  std::ifstream in("tests/data/golden/dense/reference.json");
  const nlohmann::json greedy = nlohmann::json::parse(in).at("cases").at("greedy");
  const auto prompt = greedy.at("prompt").get<std::vector<int>>();
  const auto want = greedy.at("tokens").get<std::vector<int>>();
  const std::string logits_file =
      ::testing::TempDir() + "/g4_generate_logits." + std::to_string(getpid()) + ".jsonl";
  Result r = RunGenerate("--model tests/data/golden/dense --prompt-tokens " + absl::StrJoin(prompt, ",") +
                 " --max-new-tokens " + std::to_string(want.size()) + " --ignore-eos --logits-out " +
                 logits_file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(LastLine(r.out), "[" + absl::StrJoin(want, ",") + "]");

  std::ifstream lf(logits_file);
  std::string line;
  size_t rows = 0;
  const auto ref = greedy.at("logits").get<std::vector<std::vector<float>>>();
  while (std::getline(lf, line)) {
    const auto got = nlohmann::json::parse(line).at("logits").get<std::vector<float>>();
    ASSERT_LT(rows, ref.size());
    ASSERT_EQ(got.size(), ref[rows].size());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], ref[rows][i], 2e-4);
    ++rows;
  }
  EXPECT_EQ(rows, want.size());
}

TEST(G4GenerateCliTest, BadFlagsExitTwoWithOneLine) {
  for (const char* args : {"--bogus", "", "--model tests/data/golden/dense --max-new-tokens 2",
                           "--model tests/data/golden/dense --prompt-tokens 2,a --max-new-tokens 2"}) {
    Result r = RunGenerate(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("g4-generate: ")) << args;
  }
}

TEST(G4GenerateCliTest, BadModelDirectoryExitsTwo) {
  Result r = RunGenerate("--model /nonexistent/model --prompt-tokens 2 --max-new-tokens 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/model"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(G4GenerateCliTest, OutOfRangeTokenExitsTwo) {
  Result r = RunGenerate("--model tests/data/golden/dense --prompt-tokens 2,100000 --max-new-tokens 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("100000"));
}

}  // namespace

namespace {

// The embedded model speaks text: --prompt and --chat go through its tokenizer (and chat
// template); the text printed decodes the ids on the last line.
TEST(G4GenerateCliTest, TextAndChatPrompts) {
  for (const char* prompt : {"--prompt 'Hello, how are you?'", "--chat 'Tell me a story'"}) {
    Result r = RunGenerate(std::string("--model tests/data/golden/dense ") + prompt +
                           " --max-new-tokens 6 --ignore-eos");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string last = LastLine(r.out);
    EXPECT_EQ(last.front(), '[');
    EXPECT_EQ(std::count(last.begin(), last.end(), ','), 5) << last;
    EXPECT_GT(r.out.size(), last.size() + 1) << "no text printed";
  }
}

TEST(G4GenerateCliTest, SeededSamplingIsReproducible) {
  const std::string args =
      "--model tests/data/golden/dense --prompt 'Once upon a time' --max-new-tokens 8 "
      "--temperature 1.0 --top-k 50 --seed 42 --ignore-eos";
  Result a = RunGenerate(args), b = RunGenerate(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(G4GenerateCliTest, InvalidSamplingParameterExitsTwo) {
  Result r = RunGenerate(
      "--model tests/data/golden/dense --prompt-tokens 2,3 --max-new-tokens 2 --top-p 1.5");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("top_p"));
}

}  // namespace
