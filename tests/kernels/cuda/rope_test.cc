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

// Strided rows (q of a fused qkv buffer), proportional RoPE (trailing inv_freq zeros), large
// positions.
void RunRope(int head_dim, int heads, int64_t stride, float theta) {
  const int64_t tokens = 9;
  const int half = head_dim / 2;
  std::vector<float> inv_freq(half, 0.0f);
  const int rotated = half / 4;  // partial_rotary_factor 0.25, as Gemma 4 global layers
  for (int i = 0; i < rotated; ++i) {
    inv_freq[i] = std::pow(theta, -2.0f * i / static_cast<float>(head_dim));
  }
  std::vector<int64_t> pos(tokens);
  for (int64_t t = 0; t < tokens; ++t) pos[t] = 17 + t * 12345;
  const std::vector<float> x = RandomVector(tokens * stride, 11);
  std::vector<float> want = x;
  cpu::Rope(want.data(), pos.data(), inv_freq.data(), tokens, heads, head_dim, stride);
  DeviceBuffer dx = MustUpload(x), dp = MustUpload(pos), df = MustUpload(inv_freq);
  ASSERT_TRUE(Rope(dx.as<float>(), dp.as<int64_t>(), df.as<float>(), tokens, heads, head_dim,
                   stride, nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dx, tokens * stride), want, 1e-3f, 1e-4f);
}

TEST(CudaRopeTest, HeadDim256Strided) {
  G4_REQUIRE_GPU();
  RunRope(256, 4, 4 * 256 + 2 * 2 * 256, 10000.0f);
}

TEST(CudaRopeTest, HeadDim512Proportional) {
  G4_REQUIRE_GPU();
  RunRope(512, 2, 2 * 512, 1000000.0f);
}

}  // namespace
}  // namespace g4::cuda
