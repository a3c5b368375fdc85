// Decode and prefill attention with K derived from V (AttentionShape::k_derive, the k_eq_v
// global layers) vs the CPU reference in the same mode (which equals the stored-K path bit for
// bit: tests/kernels/cpu/attention_key_derivation_test.cc), and vs the CUDA kernels' own
// stored-K path on K built by the CUDA RmsNorm and Rope kernels. Keys start at a position > 0,
// so the rotation angles are those of absolute positions.
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

struct Case {
  int head_dim;
  int num_heads;
  int num_kv_heads;
  int num_queries;
  int num_keys;
  int64_t k_pos0;  // position of key 0; queries end at the last key
  int window;
};

// Proportional RoPE as the global layers use it: a quarter of the pairs rotate, theta 1e6.
std::vector<float> InvFreq(int head_dim) {
  std::vector<float> f(head_dim / 2, 0.0f);
  for (int i = 0; i < head_dim / 8; ++i) {
    f[i] = 1.0f / std::pow(1e6f, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  }
  return f;
}

void RunCase(const Case& c, bool decode) {
  AttentionShape s;
  s.num_queries = c.num_queries;
  s.num_keys = c.num_keys;
  s.k_pos0 = c.k_pos0;
  s.q_pos0 = c.k_pos0 + c.num_keys - c.num_queries;
  s.num_heads = c.num_heads;
  s.num_kv_heads = c.num_kv_heads;
  s.head_dim = c.head_dim;
  s.q_stride = static_cast<int64_t>(c.num_heads) * c.head_dim + 8;
  s.kv_stride = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;  // dense: RmsNorm/Rope rows
  s.window = c.window;
  s.scale = 1.0f;
  const int d = c.head_dim;
  // Raw k_proj rows r; V = RmsNorm(r), K = Rope(RmsNorm(r; k_norm)) (what the cache held before).
  const std::vector<float> raw = RandomVector(s.num_keys * s.kv_stride, 41, -3.0f, 3.0f);
  const std::vector<float> k_norm = RandomVector(d, 42, 0.7f, 1.3f);
  const std::vector<float> inv_freq = InvFreq(d);
  const std::vector<float> q = RandomVector(s.num_queries * s.q_stride, 43, -0.1f, 0.1f);
  const int64_t rows = static_cast<int64_t>(s.num_keys) * c.num_kv_heads;
  std::vector<float> v(raw.size());
  cpu::RmsNorm(v.data(), raw.data(), nullptr, rows, d, kEps);
  std::vector<int64_t> positions(s.num_keys);
  for (int j = 0; j < s.num_keys; ++j) positions[j] = s.k_pos0 + j;

  AttentionShape derived = s;
  derived.k_derive = {k_norm.data(), inv_freq.data()};
  std::vector<float> want(q.size(), 0.0f);
  cpu::Attention(want.data(), q.data(), nullptr, v.data(), derived);

  DeviceBuffer dq = MustUpload(q), dv = MustUpload(v), draw = MustUpload(raw);
  DeviceBuffer dw = MustUpload(k_norm), df = MustUpload(inv_freq), dpos = MustUpload(positions);
  DeviceBuffer dk = MustUpload(std::vector<float>(raw.size(), 0.0f));
  ASSERT_TRUE(RmsNorm(dk.as<float>(), draw.as<float>(), dw.as<float>(), DType::kF32, rows, d,
                      kEps, nullptr)
                  .ok());
  ASSERT_TRUE(Rope(dk.as<float>(), dpos.as<int64_t>(), df.as<float>(), s.num_keys,
                   c.num_kv_heads, d, s.kv_stride, nullptr)
                  .ok());
  derived.k_derive = {dw.as<float>(), df.as<float>()};
  ASSERT_TRUE(CanImplementAttention(derived).ok());

  for (bool derive : {true, false}) {
    SCOPED_TRACE(derive ? "derived K" : "stored K");
    DeviceBuffer dout = MustUpload(std::vector<float>(q.size(), 0.0f));
    const AttentionShape& shape = derive ? derived : s;
    const float* k = derive ? nullptr : dk.as<float>();
    absl::Status st;
    if (decode) {
      DeviceBuffer ws =
          MustUpload(std::vector<float>(AttentionDecodeWorkspaceFloats(shape), 0.0f));
      st = AttentionDecode(dout.as<float>(), dq.as<float>(), k, dv.as<float>(), shape,
                           ws.as<float>(), nullptr);
      ASSERT_TRUE(st.ok()) << st;
      ExpectNear(MustDownload<float>(dout, q.size()), want, 1e-3f, 1e-5f);
    } else {
      st = AttentionPrefill(dout.as<float>(), dq.as<float>(), k, dv.as<float>(), shape, nullptr);
      ASSERT_TRUE(st.ok()) << st;
      ExpectNear(MustDownload<float>(dout, q.size()), want, 1e-3f, 1e-5f);
    }
  }
}

TEST(CudaAttentionKeyDerivationTest, DecodeGlobalLayerShapes) {
  G4_REQUIRE_GPU();
  RunCase({512, 32, 4, 1, 3000, 0, 0}, true);        // 31B, one rank
  RunCase({512, 16, 2, 1, 20000, 100000, 0}, true);  // 26B, keys at 100000..119999
  RunCase({512, 8, 1, 1, 37, 5, 0}, true);
  RunCase({256, 16, 8, 1, 700, 300, 128}, true);     // head_dim 256 and a window
}

TEST(CudaAttentionKeyDerivationTest, PrefillGlobalLayerShapes) {
  G4_REQUIRE_GPU();
  RunCase({512, 16, 2, 77, 600, 0, 0}, false);
  RunCase({512, 8, 1, 129, 129, 4000, 0}, false);
  RunCase({256, 4, 2, 200, 1500, 1000, 1024}, false);
}

TEST(CudaAttentionKeyDerivationTest, CanImplementNeedsTheDerivationTables) {
  const std::vector<float> table(512, 1.0f);
  AttentionShape s{.num_queries = 1, .num_keys = 4, .num_heads = 16, .num_kv_heads = 2,
                   .head_dim = 512, .q_stride = 16 * 512, .kv_stride = 2 * 512};
  s.k_derive.k_norm = table.data();
  EXPECT_FALSE(CanImplementAttention(s).ok());  // no inv_freq
  s.k_derive.inv_freq = table.data();
  EXPECT_TRUE(CanImplementAttention(s).ok());
  s.k_derive.inv_freq = table.data() + 1;  // unaligned
  EXPECT_FALSE(CanImplementAttention(s).ok());
}

}  // namespace
}  // namespace g4::cuda
