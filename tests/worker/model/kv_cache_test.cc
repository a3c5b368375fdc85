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
  EXPECT_EQ(cache.Rows(4).k, cache.Rows(2).k);
  EXPECT_NE(cache.Rows(3).k, cache.Rows(0).k);
  cache.Commit(2);
}

}  // namespace
}  // namespace g4
