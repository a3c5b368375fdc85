#include "coordinator/fleet/key_value_store_server.h"

#include <atomic>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

TEST(KeyValueStoreServerTest, GetReturnsValueThatIsSet) {
  KeyValueStoreServer store;
  store.OpenPrefix("p/");
  ASSERT_TRUE(store.Set("p/a", "1").ok());
  absl::StatusOr<std::string> v = store.Get("p/a", absl::ZeroDuration());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "1");
  ASSERT_TRUE(store.Set("p/a", "2").ok());  // overwrite
  EXPECT_EQ(*store.Get("p/a", absl::ZeroDuration()), "2");
  EXPECT_EQ(store.total_bytes(), 4u);
}

TEST(KeyValueStoreServerTest, GetBlocksUntilSet) {
  KeyValueStoreServer store;
  store.OpenPrefix("p/");
  std::atomic<bool> setting{false};
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(100));  // the Get below is most likely waiting by then
    setting = true;
    EXPECT_TRUE(store.Set("p/rank1", std::string("\0x", 2)).ok());
  });
  absl::StatusOr<std::string> v = store.Get("p/rank1", absl::Seconds(60));
  // The value exists only once Set ran: a Get that returned it waited for the Set.
  EXPECT_TRUE(setting.load());
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, std::string("\0x", 2));
}

TEST(KeyValueStoreServerTest, GetTimesOutNamingTheKey) {
  KeyValueStoreServer store;
  store.OpenPrefix("p/");
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> v = store.Get("p/missing", absl::Milliseconds(120));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("missing"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(110));
}

TEST(KeyValueStoreServerTest, CancelAndShutdownWakeWaiters) {
  KeyValueStoreServer store;
  store.OpenPrefix("p/");
  EXPECT_EQ(store.Get("p/k", absl::Seconds(10), [] { return true; }).status().code(),
            absl::StatusCode::kCancelled);
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(50));
    store.Shutdown();
  });
  EXPECT_EQ(store.Get("p/k", absl::Seconds(10)).status().code(), absl::StatusCode::kUnavailable);
  stopper.join();
}

TEST(KeyValueStoreServerTest, ErasePrefixRemovesTheLoadsKeysAndClosesIt) {
  KeyValueStoreServer store;
  store.OpenPrefix("replica0/load0/");
  store.OpenPrefix("replica1/load1/");
  ASSERT_TRUE(store.Set("replica0/load0/a", "1").ok());
  ASSERT_TRUE(store.Set("replica0/load0/b", "1").ok());
  ASSERT_TRUE(store.Set("replica1/load1/a", "1").ok());
  store.ErasePrefix("replica0/load0/");
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.total_bytes(), std::string("replica1/load1/a1").size());
  EXPECT_EQ(store.Set("replica0/load0/a", "1").code(), absl::StatusCode::kFailedPrecondition);
}

// Issue 12: the store takes only keys of loads in progress, bounded in size, waits and waiters.
TEST(KeyValueStoreServerTest, KeysOutsideAnOpenLoadAreRefused) {
  KeyValueStoreServer store;
  EXPECT_EQ(store.Set("replica0/load0/rank0", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.Get("replica0/load0/rank0", absl::Seconds(10)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  store.OpenPrefix("");  // opens nothing
  EXPECT_EQ(store.Set("x", "y").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store.Set("", "y").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.size(), 0u);
}

TEST(KeyValueStoreServerTest, ErasingAPrefixWakesItsWaiters) {
  KeyValueStoreServer store;
  store.OpenPrefix("p/");
  std::thread eraser([&] {
    absl::SleepFor(absl::Milliseconds(50));
    store.ErasePrefix("p/");
  });
  EXPECT_EQ(store.Get("p/k", absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  eraser.join();
}

TEST(KeyValueStoreServerTest, ValuesAndTheStoreAreBounded) {
  StoreLimits limits;
  limits.max_value_bytes = 100;
  limits.max_key_bytes = 20;
  limits.max_total_bytes = 250;
  KeyValueStoreServer store(limits);
  store.OpenPrefix("p/");
  absl::Status s = store.Set("p/big", std::string(101, 'v'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("value: at most 100 bytes"));
  EXPECT_EQ(store.Set("p/" + std::string(19, 'k'), "v").code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store.Set("p/a", std::string(100, 'v')).ok());
  ASSERT_TRUE(store.Set("p/b", std::string(100, 'v')).ok());
  s = store.Set("p/c", std::string(100, 'v'));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(store.Set("p/a", "small").ok());  // an overwrite frees the old value's bytes
  EXPECT_TRUE(store.Set("p/c", std::string(100, 'v')).ok());
}

TEST(KeyValueStoreServerTest, WaitsAndWaitersAreBounded) {
  StoreLimits limits;
  limits.max_wait = absl::Milliseconds(100);
  limits.max_waiters = 1;
  KeyValueStoreServer store(limits);
  store.OpenPrefix("p/");
  // An hour asked, max_wait given.
  absl::StatusOr<std::string> v = store.Get("p/missing", absl::Hours(1));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  // One waiter at a time: a second Get while the first waits is refused, not queued.
  std::atomic<bool> refused{false};
  std::thread first([&] {
    while (!refused.load()) {
      (void)store.Get("p/k1", absl::Hours(1));  // waits max_wait each time
    }
  });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!refused.load() && absl::Now() < deadline) {
    refused = store.Get("p/k2", absl::Milliseconds(10)).status().code() ==
              absl::StatusCode::kResourceExhausted;
  }
  first.join();
  EXPECT_TRUE(refused.load());
}

}  // namespace
}  // namespace g4
