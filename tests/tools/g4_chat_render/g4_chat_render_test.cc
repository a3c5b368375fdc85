// Runs the g4-chat-render binary (path from the G4_CHAT_RENDER compile definition).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"
#include "nlohmann/json.hpp"

namespace {

using ::testing::HasSubstr;

using Result = ::g4::testing::RunResult;

std::string TempPath(const std::string& tag) {
  return "/tmp/g4_chat_render_test_" + std::to_string(getpid()) + "_" + tag;
}

Result RunCli(const std::string& args) { return ::g4::testing::RunBinary(G4_CHAT_RENDER, args); }

std::string WriteTemp(const std::string& tag, const std::string& content) {
  std::string path = TempPath(tag);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

int Lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(G4ChatRenderTest, RendersEveryShippedCaseExactly) {
  int checked = 0;
  for (std::string tmpl : {"gemma-4", "gemma-4-31B-it-interleaved"}) {
    std::ifstream in("tests/data/chat_templates/cases-" + tmpl + ".jsonl");
    ASSERT_TRUE(in);
    std::string line;
    while (std::getline(in, line)) {
      nlohmann::ordered_json c = nlohmann::ordered_json::parse(line);
      SCOPED_TRACE(tmpl + ": " + c["name"].get<std::string>());
      std::string want = c["rendered"];
      c.erase("rendered");
      c.erase("name");
      std::string req = WriteTemp("req.json", c.dump());
      Result r = RunCli("--template tests/data/chat_templates/" + tmpl + ".jinja --request " + req);
      std::remove(req.c_str());
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.out, want);
      EXPECT_EQ(r.err, "");
      ++checked;
    }
  }
  EXPECT_EQ(checked, 28);
}

TEST(G4ChatRenderTest, EqualsFormFlags) {
  std::string req = WriteTemp("eq.json", R"({"messages": [{"role": "user", "content": "hi"}],
                                            "add_generation_prompt": false})");
  Result r = RunCli("--template=tests/data/chat_templates/gemma-4.jinja --request=" + req);
  std::remove(req.c_str());
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "<bos><|turn>user\nhi<turn|>\n");
}

TEST(G4ChatRenderTest, BadFlagsAndFilesExit2WithOneLine) {
  std::string good_req = WriteTemp("good.json", R"({"messages": [{"role": "user", "content": "x"}]})");
  std::string bad_json = WriteTemp("bad.json", "{not json");
  std::string bad_tmpl = WriteTemp("bad.jinja", "{% if x %}never closed");
  const std::string tmpl = "tests/data/chat_templates/gemma-4.jinja";
  for (const std::string& args :
       {std::string(""), "--template " + tmpl, "--request " + good_req,
        "--template " + tmpl + " --request " + good_req + " --bogus",
        "--template " + tmpl + " --request", "--template /nonexistent/t.jinja --request " + good_req,
        "--template " + tmpl + " --request /nonexistent/r.json",
        "--template " + tmpl + " --request " + bad_json,
        "--template " + bad_tmpl + " --request " + good_req}) {
    SCOPED_TRACE(args);
    Result r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(Lines(r.err), 1) << r.err;
  }
  std::remove(good_req.c_str());
  std::remove(bad_json.c_str());
  std::remove(bad_tmpl.c_str());
}

TEST(G4ChatRenderTest, InvalidRequestExit1WithOneLine) {
  std::string req = WriteTemp("inv.json", R"({"messages": [{"role": "wizard", "content": "x"}]})");
  Result r = RunCli("--template tests/data/chat_templates/gemma-4.jinja --request " + req);
  std::remove(req.c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(Lines(r.err), 1);
  EXPECT_THAT(r.err, HasSubstr("messages[0].role"));
}

}  // namespace
