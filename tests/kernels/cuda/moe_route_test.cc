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

void RunRoute(int64_t tokens, int num_experts, int k) {
  const std::vector<float> logits = RandomVector(tokens * num_experts, 41, -4.0f, 4.0f);
  const std::vector<float> scale = RandomVector(num_experts, 42, 0.5f, 2.0f);
  std::vector<int32_t> want_e(tokens * k);
  std::vector<float> want_w(tokens * k);
  cpu::RouteTopK(want_e.data(), want_w.data(), logits.data(), scale.data(), tokens, num_experts,
                 k);
  DeviceBuffer dl = MustUpload(logits), ds = MustUpload(scale);
  DeviceBuffer de = MustUpload(std::vector<int32_t>(tokens * k, -1));
  DeviceBuffer dw = MustUpload(std::vector<float>(tokens * k, 0.0f));
  ASSERT_TRUE(RouteTopK(de.as<int32_t>(), dw.as<float>(), dl.as<float>(), ds.as<float>(), tokens,
                        num_experts, k, nullptr)
                  .ok());
  EXPECT_EQ(MustDownload<int32_t>(de, tokens * k), want_e);
  ExpectNear(MustDownload<float>(dw, tokens * k), want_w, 1e-5f, 1e-7f);
}

TEST(CudaRouteTopKTest, Gemma4Shape) {
  G4_REQUIRE_GPU();
  RunRoute(37, 128, 8);
}

TEST(CudaRouteTopKTest, OddSizes) {
  G4_REQUIRE_GPU();
  RunRoute(5, 256, 32);
  RunRoute(9, 8, 2);
  RunRoute(3, 3, 3);
}

TEST(CudaRouteTopKTest, TiesPickLowerId) {
  G4_REQUIRE_GPU();
  const int e = 64, k = 4;
  std::vector<float> logits(e, 0.25f);  // all equal: experts 0..3
  logits[40] = 1.0f;                    // then 40 first
  const std::vector<float> scale(e, 1.0f);
  DeviceBuffer dl = MustUpload(logits), ds = MustUpload(scale);
  DeviceBuffer de = MustUpload(std::vector<int32_t>(k, -1));
  DeviceBuffer dw = MustUpload(std::vector<float>(k, 0.0f));
  ASSERT_TRUE(RouteTopK(de.as<int32_t>(), dw.as<float>(), dl.as<float>(), ds.as<float>(), 1, e,
                        k, nullptr)
                  .ok());
  EXPECT_EQ(MustDownload<int32_t>(de, k), (std::vector<int32_t>{40, 0, 1, 2}));
}

TEST(CudaRouteTopKTest, CanImplement) {
  EXPECT_TRUE(CanImplementRouteTopK(1, 128, 8).ok());
  EXPECT_FALSE(CanImplementRouteTopK(1, 512, 8).ok());
  EXPECT_FALSE(CanImplementRouteTopK(1, 128, 0).ok());
  EXPECT_FALSE(CanImplementRouteTopK(1, 4, 5).ok());
}

}  // namespace
}  // namespace g4::cuda
