#include <cstdint>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cuda/cuda_kernels.h"
#include "tests/kernels/cuda/test_util.h"

namespace g4::cuda {
namespace {

using testing::ExpectNear;
using testing::MustDownload;
using testing::MustUpload;
using testing::RandomVector;

constexpr float kEps = 1e-6f;

TEST(CudaRmsNormTest, Fp32WeightMatchesCpu) {
  G4_REQUIRE_GPU();
  const int64_t rows = 7, n = 2816;
  const std::vector<float> x = RandomVector(rows * n, 1, -3.0f, 3.0f);
  const std::vector<float> w = RandomVector(n, 2, 0.5f, 1.5f);
  std::vector<float> want(rows * n);
  cpu::RmsNorm(want.data(), x.data(), w.data(), rows, n, kEps);
  DeviceBuffer dx = MustUpload(x), dw = MustUpload(w), dy = MustUpload(x);
  ASSERT_TRUE(RmsNorm(dy.as<float>(), dx.as<float>(), dw.get(), DType::kF32, rows, n, kEps,
                      nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dy, rows * n), want, 1e-4f, 1e-5f);
}

TEST(CudaRmsNormTest, Bf16WeightAndInPlace) {
  G4_REQUIRE_GPU();
  const int64_t rows = 3, n = 512;
  const std::vector<float> x = RandomVector(rows * n, 3);
  const std::vector<float> w = RandomVector(n, 4, -2.0f, 2.0f);
  std::vector<uint16_t> wb(n);
  std::vector<float> w_rounded(n);
  for (int64_t i = 0; i < n; ++i) {
    wb[i] = testing::ToBf16(w[i]);
    w_rounded[i] = testing::FromBf16(wb[i]);
  }
  std::vector<float> want(rows * n);
  cpu::RmsNorm(want.data(), x.data(), w_rounded.data(), rows, n, kEps);
  DeviceBuffer dx = MustUpload(x), dw = MustUpload(wb);
  ASSERT_TRUE(RmsNorm(dx.as<float>(), dx.as<float>(), dw.get(), DType::kBF16, rows, n, kEps,
                      nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dx, rows * n), want, 1e-4f, 1e-5f);
}

TEST(CudaRmsNormTest, WeightlessAndFusedResidual) {
  G4_REQUIRE_GPU();
  const int64_t rows = 5, n = 256;
  const std::vector<float> x = RandomVector(rows * n, 5);
  const std::vector<float> res = RandomVector(rows * n, 6);
  std::vector<float> sum(rows * n);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = res[i] + x[i];
  std::vector<float> want(rows * n);
  cpu::RmsNorm(want.data(), sum.data(), nullptr, rows, n, kEps);
  DeviceBuffer dx = MustUpload(x), dr = MustUpload(res), dy = MustUpload(x);
  ASSERT_TRUE(AddRmsNorm(dy.as<float>(), dr.as<float>(), dx.as<float>(), nullptr, DType::kF32,
                         rows, n, kEps, nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dy, rows * n), want, 1e-4f, 1e-5f);
  ExpectNear(MustDownload<float>(dr, rows * n), sum, 0.0f, 0.0f);
}

TEST(CudaRmsNormTest, RejectsUnsupportedShape) {
  // No device needed: the shape check runs on the host.
  EXPECT_FALSE(CanImplementRmsNorm(2, 6).ok());
  EXPECT_TRUE(CanImplementRmsNorm(2, 8).ok());
}

}  // namespace
}  // namespace g4::cuda
