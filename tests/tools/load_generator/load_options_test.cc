#include "tools/load_generator/load_options.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4::load {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<LoadOptions> Parse(std::vector<const char*> args) { return ParseLoadOptions(args); }

TEST(LoadOptionsTest, Defaults) {
  auto o = Parse({"--server", "localhost:50051"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->backend, Backend::kGrpc);
  EXPECT_EQ(o->server, "localhost:50051");
  EXPECT_TRUE(std::isinf(o->request_rate));
  EXPECT_EQ(o->concurrency, 0);
  EXPECT_EQ(o->temperature, 0.0);
  EXPECT_TRUE(o->ignore_eos);
  EXPECT_EQ(o->min_token_id, 3);
  EXPECT_FALSE(o->prompt_text.has_value());
}

TEST(LoadOptionsTest, ParsesEveryFlag) {
  auto o = Parse({"--backend", "http", "--server=h:8000", "--model", "gemma", "--num-requests",
                  "50", "--request-rate", "2.5", "--prompt-len", "64", "--output-len", "32",
                  "--vocab", "1000", "--min-token-id", "10", "--seed", "9", "--concurrency", "4",
                  "--temperature", "0.7", "--timeout", "30s", "--json", "out.json", "--quiet",
                  "--no-ignore-eos"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->backend, Backend::kHttp);
  EXPECT_EQ(o->server, "h:8000");
  EXPECT_EQ(o->model, "gemma");
  EXPECT_EQ(o->num_requests, 50);
  EXPECT_DOUBLE_EQ(o->request_rate, 2.5);
  EXPECT_EQ(o->prompt_len, 64);
  EXPECT_EQ(o->output_len, 32);
  EXPECT_EQ(o->vocab, 1000);
  EXPECT_EQ(o->min_token_id, 10);
  EXPECT_EQ(o->seed, 9u);
  EXPECT_EQ(o->concurrency, 4);
  EXPECT_DOUBLE_EQ(o->temperature, 0.7);
  EXPECT_EQ(o->timeout, absl::Seconds(30));
  EXPECT_EQ(o->json_path, "out.json");
  EXPECT_TRUE(o->quiet);
  EXPECT_FALSE(o->ignore_eos);
}

TEST(LoadOptionsTest, RateInf) {
  auto o = Parse({"--server", "h:1", "--request-rate", "inf"});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(std::isinf(o->request_rate));
}

TEST(LoadOptionsTest, ErrorsNameTheFlag) {
  EXPECT_THAT(Parse({}).status().message(), HasSubstr("--server"));
  EXPECT_THAT(Parse({"--server", "h:1", "--backend", "udp"}).status().message(),
              HasSubstr("--backend"));
  EXPECT_THAT(Parse({"--server", "h:1", "--backend", "http"}).status().message(),
              HasSubstr("--model"));
  EXPECT_THAT(Parse({"--server", "h:1", "--request-rate", "0"}).status().message(),
              HasSubstr("--request-rate"));
  EXPECT_THAT(Parse({"--server", "h:1", "--request-rate", "nan"}).status().message(),
              HasSubstr("--request-rate"));
  EXPECT_THAT(Parse({"--server", "h:1", "--num-requests", "0"}).status().message(),
              HasSubstr("--num-requests"));
  EXPECT_THAT(Parse({"--server", "h:1", "--concurrency", "-1"}).status().message(),
              HasSubstr("--concurrency"));
  EXPECT_THAT(Parse({"--server", "h:1", "--vocab", "3"}).status().message(), HasSubstr("--vocab"));
  EXPECT_THAT(Parse({"--server", "h:1", "--timeout", "soon"}).status().message(),
              HasSubstr("--timeout"));
  EXPECT_THAT(Parse({"--server", "h:1", "--bogus", "1"}).status().message(), HasSubstr("--bogus"));
  EXPECT_THAT(Parse({"--server", "h:1", "--bogus=1"}).status().message(), HasSubstr("--bogus"));
  EXPECT_THAT(Parse({"--server"}).status().message(), HasSubstr("needs a value"));
}

}  // namespace
}  // namespace g4::load
