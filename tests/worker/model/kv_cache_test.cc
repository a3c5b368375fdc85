#include "worker/model/kv_cache.h"

#include <vector>

#include "gtest/gtest.h"

namespace g4 {
namespace {

// Two sliding layers, one global, then (optionally) KV-shared layers of each type.
ModelConfig SmallConfig(int shared) {
  ModelConfig c;
  c.num_layers = 3 + shared;
  c.layer_types = {LayerType::kSliding, LayerType::kSliding, LayerType::kGlobal};
  for (int i = 0; i < shared; ++i) c.layer_types.push_back(i % 2 ? LayerType::kGlobal : LayerType::kSliding);
  c.num_kv_shared_layers = shared;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_global_kv_heads = 1;
  c.attention_k_eq_v = true;
  c.head_dim = 8;
  c.global_head_dim = 16;
  c.sliding_window = 4;
  return c;
}

TEST(SequenceKvCacheTest, GlobalKeepsEveryPositionSlidingOnlyItsWindow) {
  ModelConfig c = SmallConfig(0);
  SequenceKvCache cache(c);
  for (int step = 0; step < 100; ++step) {
    cache.Reserve(1);
    auto sliding = cache.Rows(0);
    auto global = cache.Rows(2);
    // The new row is the last one, at position `step`.
    EXPECT_EQ(sliding.pos0 + sliding.rows - 1, step);
    EXPECT_EQ(global.pos0, 0);
    EXPECT_EQ(global.rows, step + 1);
    // Every key the query at `step` may see (step - W + 1 .. step) is still there.
    EXPECT_LE(sliding.pos0, std::max(0, step - c.sliding_window + 1));
    EXPECT_EQ(sliding.row_width, 2 * 8);
    EXPECT_EQ(global.row_width, 1 * 16);
    cache.Commit(1);
  }
  EXPECT_EQ(cache.length(), 100);
}

TEST(SequenceKvCacheTest, SlidingMemoryIsBoundedByTheWindow) {
  ModelConfig c = SmallConfig(0);
  c.num_layers = 2;
  c.layer_types = {LayerType::kSliding, LayerType::kSliding};
  SequenceKvCache cache(c);
  for (int step = 0; step < 1000; ++step) {
    cache.Reserve(1);
    cache.Commit(1);
  }
  const int64_t row = 2 * 8;
  EXPECT_LE(cache.AllocatedFloats(), 2 /*layers*/ * 2 /*K,V*/ * 2 * c.sliding_window * row);
}

TEST(SequenceKvCacheTest, LongChunkKeepsTheWholeChunkVisibleUntilCommit) {
  ModelConfig c = SmallConfig(0);
  SequenceKvCache cache(c);
  cache.Reserve(3);
  cache.Commit(3);
  cache.Reserve(10);  // more than the window: all 10 rows plus the window-1 old ones
  auto rows = cache.Rows(0);
  EXPECT_EQ(rows.pos0 + rows.rows, 13);
  EXPECT_LE(rows.pos0, 3 - (c.sliding_window - 1));
  cache.Commit(10);
}

TEST(SequenceKvCacheTest, DataSurvivesEviction) {
  ModelConfig c = SmallConfig(0);
  SequenceKvCache cache(c);
  for (int step = 0; step < 40; ++step) {
    cache.Reserve(1);
    auto rows = cache.Rows(0);
    for (int i = 0; i < rows.row_width; ++i) {
      rows.k[(rows.rows - 1) * rows.row_width + i] = static_cast<float>(step);
      rows.v[(rows.rows - 1) * rows.row_width + i] = static_cast<float>(-step);
    }
    // Each row still holds its own position's values after any compaction.
    for (int64_t r = 0; r < rows.rows; ++r) {
      EXPECT_EQ(rows.k[r * rows.row_width], static_cast<float>(rows.pos0 + r));
      EXPECT_EQ(rows.v[r * rows.row_width], static_cast<float>(-(rows.pos0 + r)));
    }
    cache.Commit(1);
  }
}

TEST(SequenceKvCacheTest, SharedLayersReadTheirDonor) {
  ModelConfig c = SmallConfig(2);  // layers 3 (sliding) and 4 (global) are shared
  ASSERT_EQ(c.KvSourceLayer(3), 1);
  ASSERT_EQ(c.KvSourceLayer(4), 2);
  SequenceKvCache cache(c);
  cache.Reserve(2);
  EXPECT_EQ(cache.Rows(3).k, cache.Rows(1).k);
  EXPECT_EQ(cache.Rows(3).v, cache.Rows(1).v);
  EXPECT_EQ(cache.Rows(4).v, cache.Rows(2).v);
  EXPECT_EQ(cache.Rows(4).k, nullptr);  // the donor caches V only
  EXPECT_NE(cache.Rows(3).k, cache.Rows(0).k);
  cache.Commit(2);
}

// A k_eq_v global layer caches V alone (attention derives K from it); sliding layers and global
// layers with v_proj cache both.
TEST(SequenceKvCacheTest, KEqVGlobalLayersHoldValuesOnly) {
  ModelConfig c = SmallConfig(0);
  SequenceKvCache cache(c);
  cache.Reserve(3);
  const std::vector<float> k(3 * 2 * 8, 1.0f), v(3 * 2 * 8, 2.0f), gv(3 * 16, 3.0f);
  cache.Write(0, k.data(), v.data());
  cache.Write(2, nullptr, gv.data());
  const KvCacheView::Keys global = cache.Read(2);
  EXPECT_EQ(global.k, nullptr);
  ASSERT_NE(global.v, nullptr);
  EXPECT_EQ(global.rows, 3);
  EXPECT_EQ(global.v[3 * 16 - 1], 3.0f);
  const KvCacheView::Keys sliding = cache.Read(0);
  ASSERT_NE(sliding.k, nullptr);
  EXPECT_EQ(sliding.k[0], 1.0f);
  EXPECT_EQ(sliding.v[0], 2.0f);
  cache.Commit(3);
  // Sliding layers 0, 1: K and V of 2·W rows (their first allocation); global layer 2: V only,
  // the 3 rows reserved.
  EXPECT_EQ(cache.AllocatedFloats(), 2 * 2 * (2 * c.sliding_window) * 16 + 3 * 16);

  ModelConfig e = c;  // E2B/E4B style: global layers have v_proj
  e.attention_k_eq_v = false;
  SequenceKvCache with_k(e);
  with_k.Reserve(1);
  EXPECT_NE(with_k.Rows(2).k, nullptr);
  with_k.Commit(1);
}

}  // namespace
}  // namespace g4
