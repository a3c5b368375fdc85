// A 32768-token request through the whole system (docs/long_context.md): g4-coordinator and two
// g4-workers (one TP=2 replica) serve tests/data/golden/long (max_position_embeddings 262144,
// one global layer). Checks:
//  * greedy tokens equal g4-generate's on the same model and prompt (read from a file with
//    --prompt-tokens-file: the id list is longer than one command-line argument may be);
//  * the peak pages per pool (the coordinator's g4serve_kv_cache_peak_pages) match the
//    arithmetic of docs/kv_cache.md: the global pool grows to ceil(32768/B), the sliding pool
//    stays within ceil((W-1+C)/B) + 1 for chunks of at most C tokens;
//  * a second request sharing the first 32752 tokens is served from the prefix cache: HTTP
//    usage.prompt_tokens_details.cached_tokens = 32752.
// tools/bench/long_context_bench.sh runs the same path at 262144 tokens. Bounded to ~10 min.
#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/common/metrics/test_util.h"
#include "tests/integration/cluster.h"
#include "tests/testing/run_binary.h"

namespace g4 {
namespace {

using testing::Cluster;
using testing::ClusterOptions;

constexpr int kTotal = 32768;     // prompt + generated
constexpr int kGenerated = 8;
constexpr int kBlock = 16;        // the engine's default page size
constexpr int kWindow = 1024;     // the checkpoint's sliding window
constexpr int kBatchTokens = 2048;  // the engine's default max_num_batched_tokens

// The value of the first sample of `name` whose labels contain every one of `labels`.
double Sample(const std::string& text, const std::string& name,
              const std::vector<std::string>& labels) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(line, name + "{")) continue;
    bool all = true;
    for (const std::string& l : labels) all = all && absl::StrContains(line, l);
    double v;
    if (all && absl::SimpleAtod(line.substr(line.rfind(' ') + 1), &v)) return v;
  }
  return -1;
}

TEST(LongContextTest, ThirtyTwoKTokensThroughCoordinatorAndTwoWorkers) {
  ClusterOptions o;
  o.model = "tests/data/golden/long";
  o.http = true;
  o.metrics = true;
  Cluster cluster(o);
  ASSERT_TRUE(cluster.Start(1));

  std::mt19937 rng(7);
  std::vector<int32_t> prompt = {2};
  while (static_cast<int>(prompt.size()) < kTotal - kGenerated) {
    prompt.push_back(3 + static_cast<int32_t>(rng() % 509));
  }
  g4serve::v1::GenerateRequest req;
  req.mutable_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
  req.mutable_sampling()->set_temperature(0);
  req.mutable_stopping()->set_max_tokens(kGenerated);
  req.mutable_stopping()->set_ignore_eos(true);
  const absl::Time start = absl::Now();
  const Cluster::Result served = cluster.Generate(req, absl::Minutes(6));
  ASSERT_TRUE(served.status.ok()) << served.status.error_message() << cluster.Logs();
  ASSERT_EQ(served.tokens.size(), static_cast<size_t>(kGenerated));
  EXPECT_EQ(served.usage.prompt_tokens(), kTotal - kGenerated);
  std::cout << "32K request: " << absl::Now() - start << "\n";

  // The same model and prompt in one process, prompt from a file.
  const std::string ids_file = cluster.dir() + "/prompt.ids";
  std::ofstream(ids_file) << absl::StrJoin(prompt, ",") << "\n";
  const testing::RunResult local =
      testing::RunBinary(G4_GENERATE_BIN, absl::StrCat("--model tests/data/golden/long ",
                                                       "--prompt-tokens-file ", ids_file,
                                                       " --max-new-tokens ", kGenerated,
                                                       " --ignore-eos --threads 1"));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(absl::StrCat("[", absl::StrJoin(served.tokens, ","), "]\n"), local.out);

  // Peak pages per pool, as the coordinator exports them from the leader's health.
  const int64_t global_pages = (kTotal + kBlock - 1) / kBlock;
  const int64_t sliding_bound = (kWindow - 1 + kBatchTokens + kBlock - 1) / kBlock + 1;
  double global_peak = -1, sliding_peak = -1;
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {  // the next health round carries them
    absl::StatusOr<testing::HttpResponse> m = testing::HttpGet(cluster.metrics_port(), "/metrics");
    if (m.ok()) {
      global_peak = Sample(m->body, "g4serve_kv_cache_peak_pages", {"pool=\"full\""});
      sliding_peak = Sample(m->body, "g4serve_kv_cache_peak_pages", {"pool=\"sliding\""});
    }
    if (global_peak >= global_pages - 1) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  // The last sampled token's K/V is never written: 32767 positions, ceil(32767/16) pages.
  EXPECT_EQ(global_peak, std::ceil((kTotal - 1) / static_cast<double>(kBlock)));
  EXPECT_GT(sliding_peak, (kWindow - 1) / kBlock);
  EXPECT_LE(sliding_peak, sliding_bound);
  std::cout << "peak pages: global " << global_peak << " (plan " << global_pages
            << "), sliding " << sliding_peak << " (bound " << sliding_bound << ")\n";

  // A second request with the same first 32752 tokens (2047 full pages), over HTTP.
  std::vector<int32_t> second(prompt.begin(), prompt.begin() + 32752);
  for (int i = 0; i < 8; ++i) second.push_back(500 - i);
  httplib::Client http("127.0.0.1", cluster.http_port());
  http.set_read_timeout(300, 0);
  const nlohmann::json body = {{"model", "long"},       {"prompt", second},
                               {"max_tokens", 2},       {"temperature", 0},
                               {"ignore_eos", true}};
  const absl::Time second_start = absl::Now();
  httplib::Result r = http.Post("/v1/completions", body.dump(), "application/json");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  const nlohmann::json out = nlohmann::json::parse(r->body);
  EXPECT_EQ(out["usage"]["prompt_tokens_details"]["cached_tokens"], 32752) << r->body;
  std::cout << "prefix-cached request: " << absl::Now() - second_start << "\n";
}

}  // namespace
}  // namespace g4
