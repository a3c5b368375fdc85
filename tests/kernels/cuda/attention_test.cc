// Decode (split-K) and prefill (tiled) attention vs the CPU reference: head_dim 256 and 512, GQA
// groups 2 and 8, full causal and sliding windows, keys offset from queries (a cache prefix).
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

struct Case {
  int head_dim;
  int num_heads;
  int num_kv_heads;
  int num_queries;
  int num_keys;  // keys at positions 0..num_keys-1; queries end at the last key
  int window;
};

void RunCase(const Case& c, bool decode) {
  AttentionShape s;
  s.num_queries = c.num_queries;
  s.num_keys = c.num_keys;
  s.k_pos0 = 0;
  s.q_pos0 = c.num_keys - c.num_queries;
  s.num_heads = c.num_heads;
  s.num_kv_heads = c.num_kv_heads;
  s.head_dim = c.head_dim;
  s.q_stride = static_cast<int64_t>(c.num_heads) * c.head_dim + 8;  // padded rows
  s.kv_stride = static_cast<int64_t>(c.num_kv_heads) * c.head_dim + 4;
  s.window = c.window;
  s.scale = 0.25f;  // exercise the scale path (Gemma 4 uses 1.0)
  ASSERT_TRUE(CanImplementAttention(s).ok());
  // Scores with std ~1.3-1.9 (D=256/512): a softmax that is neither uniform nor one-hot.
  const std::vector<float> q = RandomVector(s.num_queries * s.q_stride, 31, -1.0f, 1.0f);
  const std::vector<float> k = RandomVector(s.num_keys * s.kv_stride, 32, -1.0f, 1.0f);
  const std::vector<float> v = RandomVector(s.num_keys * s.kv_stride, 33, -1.0f, 1.0f);
  std::vector<float> want(q.size(), 0.0f);
  cpu::Attention(want.data(), q.data(), k.data(), v.data(), s);
  DeviceBuffer dq = MustUpload(q), dk = MustUpload(k), dv = MustUpload(v);
  DeviceBuffer dout = MustUpload(std::vector<float>(q.size(), 0.0f));
  if (decode) {
    const int64_t ws_floats = AttentionDecodeWorkspaceFloats(s);
    DeviceBuffer ws = MustUpload(std::vector<float>(ws_floats, 0.0f));
    const absl::Status st = AttentionDecode(dout.as<float>(), dq.as<float>(), dk.as<float>(),
                                            dv.as<float>(), s, ws.as<float>(), nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectNear(MustDownload<float>(dout, q.size()), want, 1e-3f, 1e-5f);
  } else {
    const absl::Status st = AttentionPrefill(dout.as<float>(), dq.as<float>(), dk.as<float>(),
                                             dv.as<float>(), s, nullptr);
    ASSERT_TRUE(st.ok()) << st;
    ExpectNear(MustDownload<float>(dout, q.size()), want, 1e-3f, 1e-5f);
  }
}

TEST(CudaAttentionDecodeTest, HeadDim256Group2Full) {
  G4_REQUIRE_GPU();
  RunCase({256, 16, 8, 1, 3000, 0}, true);
}
TEST(CudaAttentionDecodeTest, HeadDim256Group2Window) {
  G4_REQUIRE_GPU();
  RunCase({256, 16, 8, 1, 5000, 1024}, true);
}
TEST(CudaAttentionDecodeTest, HeadDim512Group8Full) {
  G4_REQUIRE_GPU();
  RunCase({512, 16, 2, 1, 20000, 0}, true);
}
TEST(CudaAttentionDecodeTest, HeadDim512Group8SmallContextAndWindow) {
  G4_REQUIRE_GPU();
  RunCase({512, 8, 1, 1, 37, 0}, true);
  RunCase({512, 8, 1, 1, 700, 100}, true);
}
TEST(CudaAttentionDecodeTest, RejectsMoreThanOneQuery) {
  G4_REQUIRE_GPU();
  AttentionShape s{.num_queries = 2, .num_keys = 4, .num_heads = 2, .num_kv_heads = 1,
                   .head_dim = 256, .q_stride = 512, .kv_stride = 256};
  EXPECT_FALSE(AttentionDecode(nullptr, nullptr, nullptr, nullptr, s, nullptr, nullptr).ok());
}

TEST(CudaAttentionPrefillTest, HeadDim256Group2Full) {
  G4_REQUIRE_GPU();
  RunCase({256, 4, 2, 300, 300, 0}, false);
}
TEST(CudaAttentionPrefillTest, HeadDim256Group2WindowWithCachePrefix) {
  G4_REQUIRE_GPU();
  RunCase({256, 4, 2, 200, 1500, 1024}, false);  // chunked prefill after 1300 cached tokens
  RunCase({256, 4, 2, 333, 333, 64}, false);
}
TEST(CudaAttentionPrefillTest, HeadDim512Group8) {
  G4_REQUIRE_GPU();
  RunCase({512, 8, 1, 129, 129, 0}, false);
  RunCase({512, 16, 2, 77, 600, 0}, false);
}

TEST(CudaAttentionShapeTest, CanImplement) {
  AttentionShape s{.num_queries = 1, .num_keys = 4, .num_heads = 16, .num_kv_heads = 2,
                   .head_dim = 512, .q_stride = 16 * 512, .kv_stride = 2 * 512};
  EXPECT_TRUE(CanImplementAttention(s).ok());
  s.head_dim = 128;
  EXPECT_FALSE(CanImplementAttention(s).ok());  // head_dim
  s.head_dim = 512;
  s.num_kv_heads = 1;
  EXPECT_FALSE(CanImplementAttention(s).ok());  // group 16
  s.num_kv_heads = 2;
  s.kv_stride = 2 * 512 + 1;
  EXPECT_FALSE(CanImplementAttention(s).ok());  // unaligned stride
}

}  // namespace
}  // namespace g4::cuda
