#include "worker/kv_cache/block_pool.h"

#include <vector>

#include "gtest/gtest.h"

namespace g4 {
namespace {

std::vector<int32_t> Blk(int32_t v) { return std::vector<int32_t>(4, v); }

TEST(BlockPoolTest, AllocateReleaseAccounting) {
  BlockPool pool(3, 4);
  EXPECT_EQ(pool.available(), 3);
  const PageId a = pool.Allocate(), b = pool.Allocate(), c = pool.Allocate();
  EXPECT_NE(a, kNoPage);
  EXPECT_NE(b, kNoPage);
  EXPECT_NE(c, kNoPage);
  EXPECT_EQ(pool.Allocate(), kNoPage);
  PoolUsage u = pool.Usage();
  EXPECT_EQ(u.used, 3);
  EXPECT_EQ(u.free, 0);
  pool.Release(b);
  u = pool.Usage();
  EXPECT_EQ(u.used, 2);
  EXPECT_EQ(u.free, 1);
  EXPECT_EQ(pool.Allocate(), b);
  EXPECT_TRUE(pool.Validate().ok());
}

TEST(BlockPoolTest, RegisteredPagesAreCachedThenEvictedLeastRecentlyReleasedFirst) {
  BlockPool pool(3, 4);
  PageId p[3];
  for (int i = 0; i < 3; ++i) {
    p[i] = pool.Allocate();
    ASSERT_TRUE(pool.Register(p[i], 100 + i, 0, Blk(i)));
  }
  pool.Release(p[1]);
  pool.Release(p[0]);
  pool.Release(p[2]);
  PoolUsage u = pool.Usage();
  EXPECT_EQ(u.cached, 3);
  EXPECT_EQ(u.free, 0);
  EXPECT_EQ(u.available(), 3);
  EXPECT_EQ(pool.Lookup(100, 0, Blk(0)), p[0]);
  // Eviction order = release order: p1, p0, p2.
  EXPECT_EQ(pool.Allocate(), p[1]);
  EXPECT_EQ(pool.Lookup(101, 0, Blk(1)), kNoPage);
  EXPECT_FALSE(pool.has_hash(p[1]));
  // Touching p0 (a prefix hit) moves it out of the LRU; p2 goes next.
  pool.Acquire(p[0]);
  EXPECT_EQ(pool.Allocate(), p[2]);
  EXPECT_EQ(pool.Allocate(), kNoPage);
  EXPECT_EQ(pool.Usage().evictions, 2);
  pool.Release(p[0]);
  EXPECT_EQ(pool.Allocate(), p[0]);
  EXPECT_TRUE(pool.Validate().ok());
}

TEST(BlockPoolTest, LookupVerifiesParentAndTokens) {
  BlockPool pool(2, 4);
  const PageId a = pool.Allocate();
  ASSERT_TRUE(pool.Register(a, 7, 3, Blk(5)));
  EXPECT_EQ(pool.Lookup(7, 3, Blk(5)), a);
  EXPECT_EQ(pool.Lookup(7, 4, Blk(5)), kNoPage);  // same hash, other parent: a collision
  EXPECT_EQ(pool.Lookup(7, 3, Blk(6)), kNoPage);  // same hash, other tokens
  EXPECT_EQ(pool.Lookup(8, 3, Blk(5)), kNoPage);
  // A second page with the same hash is not registered; it is freed, not cached.
  const PageId b = pool.Allocate();
  EXPECT_FALSE(pool.Register(b, 7, 3, Blk(5)));
  EXPECT_FALSE(pool.Register(a, 9, 3, Blk(5)));  // already registered
  pool.Release(b);
  EXPECT_EQ(pool.Usage().free, 1);
  EXPECT_TRUE(pool.Validate().ok());
}

TEST(BlockPoolTest, SharedPageNeedsEveryReference) {
  BlockPool pool(1, 4);
  const PageId a = pool.Allocate();
  pool.Acquire(a);
  EXPECT_EQ(pool.refcount(a), 2);
  pool.Release(a);
  EXPECT_EQ(pool.Usage().used, 1);
  pool.Release(a);
  EXPECT_EQ(pool.Usage().free, 1);
  EXPECT_TRUE(pool.Validate().ok());
}

TEST(BlockPoolDeathTest, DoubleFreeAborts) {
  BlockPool pool(1, 4);
  const PageId a = pool.Allocate();
  pool.Release(a);
  EXPECT_DEATH(pool.Release(a), "double free");
}

}  // namespace
}  // namespace g4
