#include "common/flags/flag_set.h"

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Options {
  std::string model;
  int port = 0;
  int64_t pages = 0;
  uint64_t seed = 0;
  double fraction = 0.9;
  std::optional<double> top_p;
  std::optional<int> top_k;
  bool json = false;
  std::optional<bool> caching;
  std::vector<std::string> stop;
  absl::Duration timeout = absl::Seconds(30);
  absl::Duration interval = absl::Seconds(2);
};

class FlagSetTest : public ::testing::Test {
 protected:
  FlagSetTest() : flags_("g4-test", "--model DIR [flags]", "A binary for tests.") {
    flags_.Add("model", &o_.model, "model directory").Value("DIR").Required();
    flags_.Add("port", &o_.port, "listen port; 0 picks one").Range(0, 65535);
    flags_.Add("num-pages", &o_.pages, "pages").Min(0);
    flags_.Add("seed", &o_.seed, "random seed");
    flags_.Add("fraction", &o_.fraction, "a fraction").RealRange(0.0, 1.0, /*exclusive_min=*/true);
    flags_.Add("top-p", &o_.top_p, "nucleus");
    flags_.Add("top-k", &o_.top_k, "top k").Min(0);
    flags_.Add("json", &o_.json, "print JSON");
    flags_.Add("enable-caching", &o_.caching, "cache prefixes");
    flags_.AddSwitch("no-enable-caching", "do not cache prefixes",
                     [this](bool on) { o_.caching = !on; });
    flags_.Add("stop", &o_.stop, "a stop string");
    flags_.Add("timeout", &o_.timeout, "deadline").MinExclusive(absl::ZeroDuration());
    flags_.Add("interval", &o_.interval, "period (0 disables)").Min(absl::ZeroDuration());
  }

  absl::Status Parse(std::vector<std::string> args) {
    return flags_.Parse(absl::MakeConstSpan(args));
  }

  Options o_;
  FlagSet flags_;
};

TEST_F(FlagSetTest, ParsesEveryTypeInBothSpellings) {
  ASSERT_TRUE(Parse({"--model", "m", "--port=8000", "--num_pages", "12",
                     "--seed=18446744073709551615", "--fraction", "0.5", "--top-p=0.25", "--top-k",
                     "40", "--json", "--enable-caching=false", "--stop", "a", "--stop=b",
                     "--timeout", "1.5", "--interval=0s"})
                  .ok());
  EXPECT_EQ(o_.model, "m");
  EXPECT_EQ(o_.port, 8000);
  EXPECT_EQ(o_.pages, 12);
  EXPECT_EQ(o_.seed, 18446744073709551615u);
  EXPECT_DOUBLE_EQ(o_.fraction, 0.5);
  EXPECT_EQ(o_.top_p, 0.25);
  EXPECT_EQ(o_.top_k, 40);
  EXPECT_TRUE(o_.json);
  EXPECT_EQ(o_.caching, std::optional<bool>(false));
  EXPECT_THAT(o_.stop, ElementsAre("a", "b"));
  EXPECT_EQ(o_.timeout, absl::Milliseconds(1500));
  EXPECT_EQ(o_.interval, absl::ZeroDuration());
  EXPECT_TRUE(flags_.Given("port"));
  EXPECT_TRUE(flags_.Given("top_k"));
  EXPECT_FALSE(flags_.help());
}

TEST_F(FlagSetTest, LastOneWinsUnlessDuplicatesAreRejected) {
  ASSERT_TRUE(
      Parse({"--model", "a", "--model", "b", "--enable-caching", "--no-enable-caching"}).ok());
  EXPECT_EQ(o_.model, "b");
  EXPECT_EQ(o_.caching, std::optional<bool>(false));
  flags_.RejectDuplicates();
  EXPECT_EQ(Parse({"--model", "a", "--model", "b"}).message(), "--model given twice");
  EXPECT_TRUE(Parse({"--model", "a", "--stop", "x", "--stop", "y"}).ok());  // repeatable
}

TEST_F(FlagSetTest, ErrorsAreOneLineNamingTheFlag) {
  auto message = [&](std::vector<std::string> args) {
    return std::string(Parse(std::move(args)).message());
  };
  EXPECT_EQ(message({}), "--model is required");
  EXPECT_EQ(message({"--model", "m", "--bogus"}), "unknown flag \"--bogus\"");
  EXPECT_EQ(message({"--model", "m", "--bogus=1"}), "unknown flag \"--bogus\"");
  EXPECT_EQ(message({"--model", "m", "stray"}), "unexpected argument \"stray\"");
  EXPECT_EQ(message({"--model"}), "--model needs a value");
  EXPECT_EQ(message({"--model", "m", "--port", "70000"}),
            "--port: expected an integer in [0, 65535], got \"70000\"");
  EXPECT_EQ(message({"--model", "m", "--port", "x"}),
            "--port: expected an integer in [0, 65535], got \"x\"");
  EXPECT_EQ(message({"--model", "m", "--num-pages", "-1"}),
            "--num-pages: expected an integer >= 0, got \"-1\"");
  EXPECT_EQ(message({"--model", "m", "--seed", "-1"}), "--seed: expected an integer, got \"-1\"");
  EXPECT_EQ(message({"--model", "m", "--fraction", "0"}),
            "--fraction: expected a number in (0, 1], got \"0\"");
  EXPECT_EQ(message({"--model", "m", "--fraction", "nan"}),
            "--fraction: expected a number in (0, 1], got \"nan\"");
  EXPECT_EQ(message({"--model", "m", "--json=maybe"}),
            "--json: expected true or false, got \"maybe\"");
  EXPECT_EQ(message({"--model", "m", "--timeout", "0"}),
            "--timeout: expected a duration > 0 like 30s or 500ms, got \"0\"");
  EXPECT_EQ(message({"--model", "m", "--interval", "soon"}),
            "--interval: expected a duration >= 0 like 30s or 500ms, got \"soon\"");
  EXPECT_EQ(message({"--model", "m", "--interval", "-5"}),
            "--interval: expected a duration >= 0 like 30s or 500ms, got \"-5\"");
  EXPECT_THAT(message({"--model", "m", "--top-k", "99999999999"}), HasSubstr("--top-k"));
}

TEST_F(FlagSetTest, HelpStopsParsingAndSkipsRequiredFlags) {
  for (const char* help : {"--help", "-h"}) {
    ASSERT_TRUE(Parse({"--port", "1", help, "--bogus"}).ok());
    EXPECT_TRUE(flags_.help());
  }
  EXPECT_FALSE(Parse({"--bogus", "--help"}).ok());
}

TEST_F(FlagSetTest, UsageListsEveryFlagWithItsDefault) {
  const std::string usage = flags_.Usage();
  EXPECT_THAT(usage, StartsWith("usage: g4-test --model DIR [flags]\n\nA binary for tests.\n"));
  std::vector<std::string> flag_lines;
  for (absl::string_view line : absl::StrSplit(usage, '\n')) {
    if (absl::StartsWith(line, "  --") || absl::StartsWith(line, "  -h")) {
      flag_lines.emplace_back(line);
    }
  }
  ASSERT_EQ(flag_lines.size(), 14u) << usage;
  EXPECT_THAT(usage, HasSubstr("--model DIR"));
  EXPECT_THAT(usage, HasSubstr("model directory (required)"));
  EXPECT_THAT(usage, HasSubstr("listen port; 0 picks one (default 0)"));
  EXPECT_THAT(usage, HasSubstr("a fraction (default 0.9)"));
  EXPECT_THAT(usage, HasSubstr("nucleus (default unset)"));
  EXPECT_THAT(usage, HasSubstr("print JSON (default off)"));
  EXPECT_THAT(usage, HasSubstr("a stop string (repeatable; default none)"));
  EXPECT_THAT(usage, HasSubstr("deadline (default 30s)"));
  EXPECT_THAT(usage, HasSubstr("-h, --help"));
  for (absl::string_view line : absl::StrSplit(usage, '\n')) {
    EXPECT_LE(line.size(), 100u) << line;
  }
}

TEST(FlagSetCustomTest, CustomParsersPrefixTheirErrorsWithTheFlag) {
  int mode = 0;
  FlagSet flags("g4-test", "[flags]");
  flags
      .AddCustom("backend", "grpc|http", "transport",
                 [&](absl::string_view v) {
                   if (v == "grpc") {
                     mode = 1;
                   } else if (v == "http") {
                     mode = 2;
                   } else {
                     return absl::InvalidArgumentError("expected grpc or http");
                   }
                   return absl::OkStatus();
                 })
      .Default("grpc");
  std::vector<std::string> args = {"--backend", "http"};
  ASSERT_TRUE(flags.Parse(absl::MakeConstSpan(args)).ok());
  EXPECT_EQ(mode, 2);
  args = {"--backend", "udp"};
  EXPECT_EQ(flags.Parse(absl::MakeConstSpan(args)).message(), "--backend: expected grpc or http");
  EXPECT_THAT(flags.Usage(), HasSubstr("--backend grpc|http"));
  EXPECT_THAT(flags.Usage(), HasSubstr("transport (default grpc)"));
}

TEST(FlagSetCustomTest, NonEmptyAndChecks) {
  std::string path;
  int n = 0;
  FlagSet flags("g4-test", "[flags]");
  flags.Add("path", &path, "a file").NonEmpty();
  flags.Add("n", &n, "a number").Check([&] {
    return n % 2 == 0 ? absl::OkStatus() : absl::InvalidArgumentError("must be even");
  });
  std::vector<std::string> args = {"--path="};
  EXPECT_EQ(flags.Parse(absl::MakeConstSpan(args)).message(), "--path: empty value");
  args = {"--n", "3"};
  EXPECT_EQ(flags.Parse(absl::MakeConstSpan(args)).message(), "--n: must be even");
}

// Positional arguments (g4-link-emulator IF_A IF_B): in order, each required, flags between them.
TEST(FlagSetCustomTest, PositionalArgumentsAreFilledInOrderAndRequired) {
  std::string a, b;
  double delay = 0;
  FlagSet flags("g4-test", "IF_A IF_B [flags]");
  flags.AddPositional("IF_A", &a, "the first interface");
  flags.AddPositional("IF_B", &b, "the second interface");
  flags.Add("delay-ms", &delay, "delay");
  std::vector<std::string> args = {"veth0", "--delay-ms", "5", "veth1"};
  ASSERT_TRUE(flags.Parse(absl::MakeConstSpan(args)).ok());
  EXPECT_EQ(a, "veth0");
  EXPECT_EQ(b, "veth1");
  EXPECT_EQ(delay, 5);
  args = {"veth0"};
  EXPECT_EQ(flags.Parse(absl::MakeConstSpan(args)).message(), "IF_B is required");
  args = {"veth0", "veth1", "veth2"};
  EXPECT_EQ(flags.Parse(absl::MakeConstSpan(args)).message(), "unexpected argument \"veth2\"");
  args = {"-h"};
  EXPECT_TRUE(flags.Parse(absl::MakeConstSpan(args)).ok());
  EXPECT_TRUE(flags.help());
  const std::string usage = flags.Usage();
  EXPECT_THAT(usage, HasSubstr("\narguments:\n  IF_A  the first interface\n"));
  EXPECT_LT(usage.find("arguments:"), usage.find("flags:"));
}

}  // namespace
}  // namespace g4
