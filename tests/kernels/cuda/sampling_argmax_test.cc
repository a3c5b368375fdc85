#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/cuda/cuda_kernels.h"
#include "tests/kernels/cuda/test_util.h"

namespace g4::cuda {
namespace {

using testing::MustDownload;
using testing::MustUpload;
using testing::RandomVector;

int32_t HostArgMax(const float* row, int64_t n) {
  int32_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

TEST(CudaArgMaxTest, VocabRows) {
  G4_REQUIRE_GPU();
  const int64_t rows = 3, n = 262144;
  std::vector<float> logits = RandomVector(rows * n, 51, -30.0f, 30.0f);
  logits[1 * n + 262143] = 100.0f;  // the last id
  logits[2 * n + 7] = 100.0f;       // a tie: lowest id wins
  logits[2 * n + 200000] = 100.0f;
  std::vector<int32_t> want(rows);
  for (int64_t r = 0; r < rows; ++r) want[r] = HostArgMax(logits.data() + r * n, n);
  ASSERT_EQ(want[2], 7);
  DeviceBuffer dl = MustUpload(logits), di = MustUpload(std::vector<int32_t>(rows, -1));
  ASSERT_TRUE(ArgMax(di.as<int32_t>(), dl.as<float>(), rows, n, nullptr).ok());
  EXPECT_EQ(MustDownload<int32_t>(di, rows), want);
}

TEST(CudaArgMaxTest, UnalignedWidthAndNan) {
  G4_REQUIRE_GPU();
  const int64_t rows = 2, n = 1001;
  std::vector<float> logits = RandomVector(rows * n, 52);
  logits[5] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int32_t> want(rows);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> row(logits.begin() + r * n, logits.begin() + (r + 1) * n);
    for (float& x : row) {
      if (x != x) x = -std::numeric_limits<float>::infinity();
    }
    want[r] = HostArgMax(row.data(), n);
  }
  DeviceBuffer dl = MustUpload(logits), di = MustUpload(std::vector<int32_t>(rows, -1));
  ASSERT_TRUE(ArgMax(di.as<int32_t>(), dl.as<float>(), rows, n, nullptr).ok());
  EXPECT_EQ(MustDownload<int32_t>(di, rows), want);
}

}  // namespace
}  // namespace g4::cuda
