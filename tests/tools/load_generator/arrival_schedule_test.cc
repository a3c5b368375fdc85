#include "tools/load_generator/arrival_schedule.h"

#include <cmath>
#include <limits>

#include "gtest/gtest.h"

namespace g4::load {
namespace {

TEST(ArrivalScheduleTest, InfiniteRateSendsEverythingAtOnce) {
  const auto offsets = PoissonArrivalOffsets(5, std::numeric_limits<double>::infinity(), 1);
  ASSERT_EQ(offsets.size(), 5u);
  for (double t : offsets) EXPECT_EQ(t, 0.0);
}

TEST(ArrivalScheduleTest, SeededAndNonDecreasing) {
  const auto a = PoissonArrivalOffsets(1000, 10.0, 42);
  const auto b = PoissonArrivalOffsets(1000, 10.0, 42);
  const auto c = PoissonArrivalOffsets(1000, 10.0, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(a[0], 0.0);
  for (size_t i = 1; i < a.size(); ++i) EXPECT_GE(a[i], a[i - 1]);
}

TEST(ArrivalScheduleTest, MeanRateAndExponentialGaps) {
  const double rate = 20.0;
  const int n = 20001;
  const auto t = PoissonArrivalOffsets(n, rate, 7);
  // 20000 gaps: the mean gap is within ~3 standard errors (1/sqrt(n) relative) of 1/rate.
  const double mean_gap = t.back() / (n - 1);
  EXPECT_NEAR(mean_gap * rate, 1.0, 0.03);
  // Exponential: the coefficient of variation is 1, and P(gap > mean) = 1/e.
  double sq = 0;
  int above = 0;
  for (int i = 1; i < n; ++i) {
    const double g = t[i] - t[i - 1];
    sq += (g - mean_gap) * (g - mean_gap);
    above += g > 1.0 / rate;
  }
  EXPECT_NEAR(std::sqrt(sq / (n - 1)) / mean_gap, 1.0, 0.05);
  EXPECT_NEAR(static_cast<double>(above) / (n - 1), std::exp(-1.0), 0.02);
}

TEST(ArrivalScheduleTest, EdgeCounts) {
  EXPECT_TRUE(PoissonArrivalOffsets(0, 1.0, 0).empty());
  EXPECT_EQ(PoissonArrivalOffsets(1, 1.0, 0), std::vector<double>{0.0});
}

}  // namespace
}  // namespace g4::load
