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
  store.Set("a", "1");
  absl::StatusOr<std::string> v = store.Get("a", absl::ZeroDuration());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, "1");
  store.Set("a", "2");  // overwrite
  EXPECT_EQ(*store.Get("a", absl::ZeroDuration()), "2");
}

TEST(KeyValueStoreServerTest, GetBlocksUntilSet) {
  KeyValueStoreServer store;
  std::atomic<bool> setting{false};
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(100));  // the Get below is most likely waiting by then
    setting = true;
    store.Set("p/rank1", std::string("\0x", 2));
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
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> v = store.Get("missing", absl::Milliseconds(120));
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(v.status().message(), HasSubstr("missing"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(110));
}

TEST(KeyValueStoreServerTest, CancelAndShutdownWakeWaiters) {
  KeyValueStoreServer store;
  EXPECT_EQ(store.Get("k", absl::Seconds(10), [] { return true; }).status().code(),
            absl::StatusCode::kCancelled);
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(50));
    store.Shutdown();
  });
  EXPECT_EQ(store.Get("k", absl::Seconds(10)).status().code(), absl::StatusCode::kUnavailable);
  stopper.join();
}

TEST(KeyValueStoreServerTest, ErasePrefix) {
  KeyValueStoreServer store;
  store.Set("replica0/load0/a", "1");
  store.Set("replica0/load0/b", "1");
  store.Set("replica1/load1/a", "1");
  store.ErasePrefix("replica0/");
  EXPECT_EQ(store.size(), 1u);
}

}  // namespace
}  // namespace g4
