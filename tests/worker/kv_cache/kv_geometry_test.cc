#include "worker/kv_cache/kv_geometry.h"

#include "gtest/gtest.h"

namespace g4 {
namespace {

ModelConfig Gemma31B() {
  ModelConfig c;
  c.num_layers = 60;
  for (int i = 0; i < 60; ++i) {
    c.layer_types.push_back(i % 6 == 5 ? LayerType::kGlobal : LayerType::kSliding);
  }
  c.num_kv_heads = 16;
  c.num_global_kv_heads = 4;
  c.head_dim = 256;
  c.global_head_dim = 512;
  c.attention_k_eq_v = true;
  c.sliding_window = 1024;
  return c;
}

TEST(KvGeometryTest, Gemma31BPageShapes) {
  auto g = KvGeometryFromConfig(Gemma31B(), 16);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->sliding.num_layers, 50);
  EXPECT_EQ(g->global.num_layers, 10);
  EXPECT_EQ(g->sliding.BytesPerToken(), 50 * 16384);
  EXPECT_EQ(g->global.BytesPerToken(), 10 * 8192);
  EXPECT_EQ(g->sliding.BytesPerPage(), int64_t{16} * 50 * 16 * 256 * 2 * 2);  // 12.5 MiB
  EXPECT_EQ(g->global.BytesPerPage(), int64_t{16} * 10 * 4 * 512 * 2 * 2);    // 1.25 MiB
  // 256K tokens: 16384 global pages + 65 sliding pages (doc: 20.78 GiB with an exact ring).
  EXPECT_EQ(g->GlobalPagesFor(262144), 16384);
  EXPECT_EQ(g->SlidingPagesFor(262144), 65);
  EXPECT_EQ(g->BytesFor(262144), 16384 * g->global.BytesPerPage() + 65 * g->sliding.BytesPerPage());
  EXPECT_EQ(g->SlidingPagesFor(100), 7);
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
