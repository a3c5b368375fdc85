// Every binary answers --help and -h with its full usage on stdout and exit 0, lists each flag
// with its default (or "required"), and rejects a bad flag with one stderr line and exit 2.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::vector<std::string>& Binaries() {
  static const std::vector<std::string> binaries = {G4_CLI_BINARIES};
  return binaries;
}

std::string Name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

TEST(CliHelpTest, HelpPrintsTheFullUsageAndExitsZero) {
  ASSERT_EQ(Binaries().size(), 19u);
  for (const std::string& bin : Binaries()) {
    for (const char* help : {"--help", "-h"}) {
      SCOPED_TRACE(bin + " " + help);
      const g4::testing::RunResult r = g4::testing::RunBinary(bin, help);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.err, "");
      EXPECT_THAT(r.out, StartsWith("usage: " + Name(bin) + " "));
      EXPECT_THAT(r.out, HasSubstr("\nflags:\n"));
      EXPECT_THAT(r.out, HasSubstr("-h, --help"));
      // Every flag entry says its default or that it is required. An entry is a line starting
      // "  --"; its help may continue on the following indented lines.
      std::vector<std::string> entries;
      bool in_flags = false;  // the entries follow "flags:"
      for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
        if (line == "flags:") in_flags = true;
        if (!in_flags) continue;
        if (absl::StartsWith(line, "  --")) {
          entries.emplace_back(line);
        } else if (!entries.empty() && absl::StartsWith(line, "    ")) {
          entries.back() += std::string(line);
        } else if (!absl::StartsWith(line, "  -h")) {
          entries.emplace_back();  // ends the previous entry
        }
      }
      int flags = 0;
      for (const std::string& e : entries) {
        if (e.empty()) continue;
        ++flags;
        EXPECT_TRUE(absl::StrContains(e, "(default ") || absl::StrContains(e, "(required)") ||
                    absl::StrContains(e, "(repeatable; default "))
            << e;
      }
      EXPECT_GE(flags, 2);
    }
  }
}

TEST(CliHelpTest, AnUnknownFlagIsOneLineAndExitTwo) {
  for (const std::string& bin : Binaries()) {
    SCOPED_TRACE(bin);
    const g4::testing::RunResult r = g4::testing::RunBinary(bin, "--no-such-flag");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, Name(bin) + ": unknown flag \"--no-such-flag\" (see --help)\n");
  }
}

// g4-worker documents all 21 of its flags (it used to list 3).
TEST(CliHelpTest, WorkerUsageListsEveryFlag) {
  std::string worker;
  for (const std::string& bin : Binaries()) {
    if (Name(bin) == "g4-worker") worker = bin;
  }
  const g4::testing::RunResult r = g4::testing::RunBinary(worker, "--help");
  for (const char* flag :
       {"--coordinator", "--host", "--port", "--threads", "--register-timeout",
        "--heartbeat-interval", "--gloo-interface", "--metrics-port", "--metrics-host",
        "--metrics-prefix", "--served-model-name", "--replica-group", "--replica-rank",
        "--drain-timeout", "--heap-release-interval", "--model-root", "--internal-tls-cert",
        "--internal-tls-key", "--internal-tls-ca", "--internal-tls-refresh-interval",
        "--coordinator-identity"}) {
    EXPECT_THAT(r.out, HasSubstr(std::string("\n  ") + flag + " ")) << flag;
  }
}

}  // namespace
