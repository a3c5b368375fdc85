#include "tools/load_generator/latency_curve_svg.h"

#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/load_generator/load_options.h"

namespace g4::load {
namespace {

using ::testing::HasSubstr;

SweepPoint Point(double rate, double tokens_per_s, double ttft50, double ttft99, double itl50,
                 double itl99) {
  SweepPoint p;
  p.request_rate = rate;
  p.report.output_throughput = tokens_per_s;
  p.report.ttft_ms.median = ttft50;
  p.report.ttft_ms.p99 = ttft99;
  p.report.itl_ms.median = itl50;
  p.report.itl_ms.p99 = itl99;
  return p;
}

TEST(LatencyCurveSvgTest, DrawsEachPercentileAgainstThroughput) {
  const std::string svg = LatencyCurveSvg(
      {Point(4, 300, 40, 90, 10, 30), Point(1, 100, 20, 50, 9, 20),
       Point(std::numeric_limits<double>::infinity(), 450, 800, 1900, 30, 80)},
      "sweep <test>");
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr("</svg>"));
  EXPECT_THAT(svg, HasSubstr("sweep &lt;test&gt;"));
  for (const char* s : {"TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "achieved output tokens/s"}) {
    EXPECT_THAT(svg, HasSubstr(s));
  }
  // Four series of three points each; points sorted by throughput, rates listed.
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(svg, "<circle")).size() - 1, 12u);
  EXPECT_THAT(svg, HasSubstr("1 req/s → 100 tok/s, 4 req/s → 300 tok/s, inf req/s → 450 tok/s"));
  // Axes end at round values above the largest point: 500 tok/s, 2000 ms (TTFT), 100 ms (ITL).
  EXPECT_THAT(svg, HasSubstr(">500<"));
  EXPECT_THAT(svg, HasSubstr(">2000<"));
  EXPECT_THAT(svg, HasSubstr(">100<"));
}

TEST(LatencyCurveSvgTest, SweepFlags) {
  absl::StatusOr<LoadOptions> o = ParseLoadOptions(
      std::vector<const char*>{"--server", "h:1", "--sweep-rates", "1,2.5,inf", "--svg", "x.svg"});
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_EQ(o->sweep_rates.size(), 3u);
  EXPECT_EQ(o->sweep_rates[1], 2.5);
  EXPECT_TRUE(std::isinf(o->sweep_rates[2]));
  EXPECT_EQ(o->svg_path, "x.svg");
  EXPECT_THAT(ParseLoadOptions(std::vector<const char*>{"--server", "h:1", "--svg", "x.svg"})
                  .status()
                  .message(),
              HasSubstr("--svg: needs --sweep-rates"));
  EXPECT_THAT(ParseLoadOptions(std::vector<const char*>{"--server", "h:1", "--sweep-rates", "1,0"})
                  .status()
                  .message(),
              HasSubstr("--sweep-rates"));
}

}  // namespace
}  // namespace g4::load
