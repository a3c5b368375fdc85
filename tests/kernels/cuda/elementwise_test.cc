// GeluTanhMul (geglu.cu) and Embed / Add / Scale / Mul / Softcap (elementwise.cu).
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

constexpr int64_t kN = 100003;  // odd: exercises the tail

TEST(CudaElementwiseTest, GeluTanhMul) {
  G4_REQUIRE_GPU();
  const std::vector<float> gate = RandomVector(kN, 21, -8.0f, 8.0f);
  const std::vector<float> up = RandomVector(kN, 22, -2.0f, 2.0f);
  std::vector<float> want(kN);
  cpu::GeluTanhMul(want.data(), gate.data(), up.data(), kN);
  DeviceBuffer dg = MustUpload(gate), du = MustUpload(up), dout = MustUpload(up);
  ASSERT_TRUE(GeluTanhMul(dout.as<float>(), dg.as<float>(), du.as<float>(), kN, nullptr).ok());
  ExpectNear(MustDownload<float>(dout, kN), want, 1e-4f, 1e-5f);  // GELU cancels far left
}

TEST(CudaElementwiseTest, AddScaleMulSoftcap) {
  G4_REQUIRE_GPU();
  const std::vector<float> x = RandomVector(kN, 23, -40.0f, 40.0f);
  const std::vector<float> y = RandomVector(kN, 24, -2.0f, 2.0f);
  std::vector<float> want = x;
  cpu::Add(want.data(), y.data(), kN);
  cpu::Scale(want.data(), 0.37f, kN);
  cpu::Mul(want.data(), y.data(), kN);
  cpu::Softcap(want.data(), 7.5f, kN);
  DeviceBuffer dx = MustUpload(x), dy = MustUpload(y);
  ASSERT_TRUE(Add(dx.as<float>(), dy.as<float>(), kN, nullptr).ok());
  ASSERT_TRUE(Scale(dx.as<float>(), 0.37f, kN, nullptr).ok());
  ASSERT_TRUE(Mul(dx.as<float>(), dy.as<float>(), kN, nullptr).ok());
  ASSERT_TRUE(Softcap(dx.as<float>(), 7.5f, kN, nullptr).ok());
  ExpectNear(MustDownload<float>(dx, kN), want, 1e-5f, 1e-6f);
}

TEST(CudaElementwiseTest, EmbedFp32AndBf16) {
  G4_REQUIRE_GPU();
  const int64_t vocab = 300, dim = 1536, tokens = 6;
  const std::vector<float> table = RandomVector(vocab * dim, 25);
  const std::vector<int32_t> ids = {5, 299, 0, 5, 123, 77};
  const float scale = 39.191835884530846f;  // sqrt(1536)
  std::vector<float> want(tokens * dim);
  cpu::Embed(want.data(), table.data(), ids.data(), tokens, dim, scale);
  DeviceBuffer dt = MustUpload(table), di = MustUpload(ids), dout = MustUpload(want);
  ASSERT_TRUE(Embed(dout.as<float>(), dt.get(), DType::kF32, di.as<int32_t>(), tokens, dim,
                    scale, nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dout, tokens * dim), want, 1e-6f, 0.0f);

  std::vector<uint16_t> tb(table.size());
  std::vector<float> tr(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    tb[i] = testing::ToBf16(table[i]);
    tr[i] = testing::FromBf16(tb[i]);
  }
  cpu::Embed(want.data(), tr.data(), ids.data(), tokens, dim, scale);
  DeviceBuffer dtb = MustUpload(tb);
  ASSERT_TRUE(Embed(dout.as<float>(), dtb.get(), DType::kBF16, di.as<int32_t>(), tokens, dim,
                    scale, nullptr)
                  .ok());
  ExpectNear(MustDownload<float>(dout, tokens * dim), want, 1e-6f, 0.0f);
}

}  // namespace
}  // namespace g4::cuda
