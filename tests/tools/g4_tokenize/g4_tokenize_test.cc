// Runs the g4-tokenize binary (path from the G4_TOKENIZE_BIN compile definition).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace {

using ::testing::HasSubstr;

constexpr char kTok[] = "tests/data/tokenizer/tokenizer.json.xz";

using Result = ::g4::testing::RunResult;

// Unique per process and call: ctest runs test cases in parallel processes.
std::string TempPath(const std::string& tag) {
  static int counter = 0;
  return absl::StrCat(::testing::TempDir(), "/g4_tokenize_test_", getpid(), "_", counter++, "_",
                      tag);
}

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

Result RunTool(const std::string& args) { return ::g4::testing::RunBinary(G4_TOKENIZE_BIN, args); }

TEST(G4Tokenize, Text) {
  Result r = RunTool(absl::StrCat("--tokenizer ", kTok, " --text 'Hello world!'"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "[9259,1902,236888]\n");
  r = RunTool(absl::StrCat("--tokenizer=", kTok, " --add-bos --text='Hello world!'"));
  EXPECT_EQ(r.out, "[2,9259,1902,236888]\n");
  r = RunTool(absl::StrCat("--tokenizer ", kTok, " --text ''"));
  EXPECT_EQ(r.out, "[]\n");
}

TEST(G4Tokenize, Jsonl) {
  const std::string in = TempPath("in.jsonl");
  {
    std::ofstream f(in);
    f << R"({"text": "Hello world!"})" << "\n"
      << R"({"text": "<start_of_turn>user\nHi<end_of_turn>\n", "other": 1})" << "\n"
      << "\n"
      << R"({"text": ""})" << "\n";
  }
  Result r = RunTool(absl::StrCat("--tokenizer ", kTok, " --jsonl ", in));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"ids\":[9259,1902,236888]}\n{\"ids\":[105,2364,107,10979,106,107]}\n"
            "{\"ids\":[]}\n");
  r = RunTool(absl::StrCat("--tokenizer ", kTok, " --add-bos --jsonl ", in));
  EXPECT_THAT(r.out, HasSubstr("{\"ids\":[2,9259,1902,236888]}\n"));
  std::remove(in.c_str());
}

TEST(G4Tokenize, BadJsonlLine) {
  const std::string in = TempPath("bad.jsonl");
  {
    std::ofstream f(in);
    f << R"({"text": "ok"})" << "\n" << R"({"txt": "x"})" << "\n";
  }
  Result r = RunTool(absl::StrCat("--tokenizer ", kTok, " --jsonl ", in));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr(":2: missing string field \"text\""));
  std::remove(in.c_str());
}

TEST(G4Tokenize, BadFlagsExit2WithOneLine) {
  for (const std::string& args :
       {std::string("--text hi"), absl::StrCat("--tokenizer ", kTok),
        absl::StrCat("--tokenizer ", kTok, " --text a --jsonl b"),
        absl::StrCat("--tokenizer ", kTok, " --text a --bogus"),
        absl::StrCat("--tokenizer ", kTok, " --text"), std::string("")}) {
    Result r = RunTool(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_EQ(r.out, "") << args;
    ASSERT_FALSE(r.err.empty()) << args;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << args << ": " << r.err;
  }
}

TEST(G4Tokenize, MissingTokenizerFileExit1) {
  Result r = RunTool("--tokenizer /nonexistent/tokenizer.json --text hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/tokenizer.json"));
}

}  // namespace
