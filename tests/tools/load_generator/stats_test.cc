#include "tools/load_generator/stats.h"

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4::load {
namespace {

using ::testing::HasSubstr;

TEST(PercentileTest, MatchesNumpyLinear) {
  // numpy.percentile([1, 2, 3, 4], q) for q = 0, 50, 90, 99, 100.
  const std::vector<double> v = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(Percentile(v, 0), 1.0);
  EXPECT_DOUBLE_EQ(Percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(Percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(Percentile(v, 100), 4.0);
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7.0);
  EXPECT_DOUBLE_EQ(Percentile({}, 50), 0.0);
}

TEST(SummarizeTest, MeanStdMedian) {
  const std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  const Distribution d = Summarize(v);
  EXPECT_EQ(d.count, 8u);
  EXPECT_DOUBLE_EQ(d.mean, 5.0);
  EXPECT_DOUBLE_EQ(d.stddev, 2.0);  // population std
  EXPECT_DOUBLE_EQ(d.median, 4.5);
  EXPECT_DOUBLE_EQ(d.min, 2.0);
  EXPECT_DOUBLE_EQ(d.max, 9.0);
}

TEST(ChunkTimerTest, TtftAndOneItlPerChunk) {
  using Clock = ChunkTimer::Clock;
  const Clock::time_point t0{};
  ChunkTimer timer(t0);
  timer.OnChunk(0, t0 + std::chrono::milliseconds(5));  // no tokens: ignored
  timer.OnChunk(1, t0 + std::chrono::milliseconds(100));
  timer.OnChunk(3, t0 + std::chrono::milliseconds(130));  // 3 tokens: one 30 ms gap
  timer.OnChunk(1, t0 + std::chrono::milliseconds(150));
  RequestResult r;
  timer.Finish(&r, t0 + std::chrono::milliseconds(160));
  EXPECT_EQ(r.output_tokens, 5);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_DOUBLE_EQ(r.ttft_s, 0.1);
  EXPECT_DOUBLE_EQ(r.e2e_s, 0.16);
  ASSERT_EQ(r.itl_s.size(), 2u);
  EXPECT_NEAR(r.itl_s[0], 0.03, 1e-12);
  EXPECT_NEAR(r.itl_s[1], 0.02, 1e-12);
}

TEST(AggregateTest, ThroughputAndLatencies) {
  RequestResult a;
  a.success = true;
  a.prompt_tokens = 10;
  a.output_tokens = 5;
  a.chunks = 5;
  a.ttft_s = 0.1;
  a.e2e_s = 0.5;  // TPOT (0.5 - 0.1) / 4 = 100 ms
  a.itl_s = {0.1, 0.1, 0.1, 0.1};
  RequestResult b = a;
  b.ttft_s = 0.3;
  b.e2e_s = 0.7;
  b.itl_s = {0.05, 0.15, 0.1, 0.1};
  RequestResult failed;
  failed.error = "boom";
  const Report r = Aggregate({a, b, failed}, 2.0);
  EXPECT_EQ(r.successful, 2);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.total_input_tokens, 20);
  EXPECT_EQ(r.total_output_tokens, 10);
  EXPECT_DOUBLE_EQ(r.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(r.output_throughput, 5.0);
  EXPECT_DOUBLE_EQ(r.total_token_throughput, 15.0);
  EXPECT_DOUBLE_EQ(r.mean_tokens_per_chunk, 1.0);
  EXPECT_NEAR(r.ttft_ms.mean, 200.0, 1e-9);
  EXPECT_NEAR(r.ttft_ms.median, 200.0, 1e-9);
  EXPECT_NEAR(r.ttft_ms.p99, 298.0, 1e-9);
  EXPECT_NEAR(r.tpot_ms.mean, 100.0, 1e-9);
  EXPECT_EQ(r.itl_ms.count, 8u);
  EXPECT_NEAR(r.itl_ms.mean, 100.0, 1e-9);
  EXPECT_NEAR(r.e2e_ms.mean, 600.0, 1e-9);
  EXPECT_EQ(r.first_error, "boom");

  const std::string table = FormatReport(r);
  EXPECT_THAT(table, HasSubstr("Successful requests:                     2"));
  EXPECT_THAT(table, HasSubstr("Failed requests:                         1"));
  EXPECT_THAT(table, HasSubstr("Output token throughput (tok/s):         5.00"));
  EXPECT_THAT(table, HasSubstr("P99 TTFT (ms):                           298.00"));
  EXPECT_THAT(table, HasSubstr("First error: boom"));

  const nlohmann::json j = ReportToJson(r, {a, b, failed});
  EXPECT_EQ(j["completed"], 2);
  EXPECT_EQ(j["itls_s"].size(), 3u);
  EXPECT_EQ(j["errors"][2], "boom");
  EXPECT_DOUBLE_EQ(j["ttft_ms"]["p99"].get<double>(), r.ttft_ms.p99);
}

TEST(AggregateTest, SingleTokenRequestsHaveNoTpot) {
  RequestResult a;
  a.success = true;
  a.output_tokens = 1;
  a.chunks = 1;
  a.ttft_s = a.e2e_s = 0.2;
  const Report r = Aggregate({a}, 1.0);
  EXPECT_EQ(r.tpot_ms.count, 0u);
  EXPECT_EQ(r.itl_ms.count, 0u);
  EXPECT_DOUBLE_EQ(r.tpot_ms.mean, 0.0);
}

}  // namespace
}  // namespace g4::load
