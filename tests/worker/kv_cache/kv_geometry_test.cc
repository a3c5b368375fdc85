#include "worker/kv_cache/kv_geometry.h"

#include "gtest/gtest.h"

namespace g4 {
namespace {

// The 31B / 26B-A4B layout: (5 sliding, 1 global) × layers/6, head_dim 256 / 512, k_eq_v.
ModelConfig KEqVModel(int layers, int kv_heads, int global_kv_heads) {
  ModelConfig c;
  c.num_layers = layers;
  for (int i = 0; i < layers; ++i) {
    c.layer_types.push_back(i % 6 == 5 ? LayerType::kGlobal : LayerType::kSliding);
  }
  c.num_kv_heads = kv_heads;
  c.num_global_kv_heads = global_kv_heads;
  c.head_dim = 256;
  c.global_head_dim = 512;
  c.attention_k_eq_v = true;
  c.sliding_window = 1024;
  return c;
}

ModelConfig Gemma31B() { return KEqVModel(60, 16, 4); }

// Global layers of the 31B are k_eq_v: their pages hold V only (K is derived from V).
TEST(KvGeometryTest, Gemma31BPageShapes) {
  auto g = KvGeometryFromConfig(Gemma31B(), 16);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->sliding.num_layers, 50);
  EXPECT_EQ(g->global.num_layers, 10);
  EXPECT_EQ(g->sliding.tensors, 2);
  EXPECT_EQ(g->global.tensors, 1);
  EXPECT_EQ(g->sliding.BytesPerToken(), 50 * 16384);
  EXPECT_EQ(g->global.BytesPerToken(), 10 * 4096);
  EXPECT_EQ(g->sliding.BytesPerPage(), int64_t{16} * 50 * 16 * 256 * 2 * 2);  // 12.5 MiB
  EXPECT_EQ(g->global.BytesPerPage(), int64_t{16} * 10 * 4 * 512 * 2);        // 640 KiB
  // 256K tokens: 16384 global pages (10 GiB) + 65 sliding pages (812.5 MiB).
  EXPECT_EQ(g->GlobalPagesFor(262144), 16384);
  EXPECT_EQ(g->SlidingPagesFor(262144), 65);
  EXPECT_EQ(g->BytesFor(262144), int64_t{10} * 4 * 512 * 2 * 262144 + 65 * 13107200);
  EXPECT_EQ(g->SlidingPagesFor(100), 7);
  EXPECT_TRUE(KeysDerivedFromValues(Gemma31B(), 5));
  EXPECT_FALSE(KeysDerivedFromValues(Gemma31B(), 4));
}

TEST(KvGeometryTest, Gemma26BPageShapes) {
  auto g = KvGeometryFromConfig(KEqVModel(30, 8, 2), 16);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->global.BytesPerToken(), 5 * 2 * 512 * 2);
  EXPECT_EQ(g->sliding.BytesPerToken(), 25 * 2 * 8 * 256 * 2);
  // 5 GiB of global V halved: 2.5 GiB, plus 65 sliding pages of 3.125 MiB.
  EXPECT_EQ(g->BytesFor(262144), int64_t{5} * 2 * 512 * 2 * 262144 + 65 * 3276800);
}

// Without k_eq_v (E2B/E4B) the global layers have v_proj and cache K and V.
TEST(KvGeometryTest, GlobalLayersWithVProjCacheKAndV) {
  ModelConfig c = Gemma31B();
  c.attention_k_eq_v = false;
  c.num_global_kv_heads = 0;
  auto g = KvGeometryFromConfig(c, 16);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->global.tensors, 2);
  EXPECT_EQ(g->global.BytesPerToken(), 10 * 2 * 16 * 512 * 2);
  EXPECT_FALSE(KeysDerivedFromValues(c, 5));
}

TEST(KvGeometryTest, SharedLayersOwnNoCache) {
  ModelConfig c = Gemma31B();
  c.num_kv_shared_layers = 30;  // layers 30..59
  auto g = KvGeometryFromConfig(c, 16);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->sliding.num_layers, 25);
  EXPECT_EQ(g->global.num_layers, 5);
}

TEST(KvGeometryTest, RejectsBadInput) {
  EXPECT_FALSE(KvGeometryFromConfig(Gemma31B(), 0).ok());
  ModelConfig c = Gemma31B();
  c.sliding_window = 0;
  EXPECT_FALSE(KvGeometryFromConfig(c, 16).ok());
}

}  // namespace
}  // namespace g4
