#include "worker/comm/key_value_store.h"

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/worker/comm/comm_test_util.h"

namespace g4 {
namespace {

using ::g4::testing::HardTimeLimit;
using ::g4::testing::ScopedTempDir;

enum class Kind { kInMemory, kDirectory };

class KeyValueStoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kInMemory) {
      store_ = std::make_unique<InMemoryKeyValueStore>();
    } else {
      store_ = std::make_unique<DirectoryKeyValueStore>(dir_.path());
    }
  }

  HardTimeLimit limit_{30};
  ScopedTempDir dir_{"g4comm"};
  std::unique_ptr<KeyValueStore> store_;
};

TEST_P(KeyValueStoreTest, SetThenGet) {
  const std::string value("a\0b/c", 5);
  ASSERT_TRUE(store_->Set("g4/group/0", value).ok());
  absl::StatusOr<std::string> got = store_->Get("g4/group/0", absl::Seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, value);
  ASSERT_TRUE(store_->Set("empty", "").ok());
  got = store_->Get("empty", absl::Seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
}

TEST_P(KeyValueStoreTest, OverwriteReplacesValue) {
  ASSERT_TRUE(store_->Set("k", "one").ok());
  ASSERT_TRUE(store_->Set("k", "two").ok());
  EXPECT_EQ(*store_->Get("k", absl::Seconds(1)), "two");
}

TEST_P(KeyValueStoreTest, GetWaitsForLaterSet) {
  std::thread setter([this] {
    absl::SleepFor(absl::Milliseconds(100));
    ASSERT_TRUE(store_->Set("late", "value").ok());
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> got = store_->Get("late", absl::Seconds(5));
  setter.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "value");
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_P(KeyValueStoreTest, MissingKeyTimesOutInBoundedTime) {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> got = store_->Get("never", absl::Milliseconds(200));
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_NE(got.status().message().find("never"), std::string::npos) << got.status();
  EXPECT_GE(elapsed, absl::Milliseconds(190));
  EXPECT_LT(elapsed, absl::Seconds(2));
}

TEST_P(KeyValueStoreTest, ZeroTimeoutIsAProbe) {
  EXPECT_EQ(store_->Get("absent", absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(store_->Set("present", "x").ok());
  EXPECT_TRUE(store_->Get("present", absl::ZeroDuration()).ok());
}

INSTANTIATE_TEST_SUITE_P(Stores, KeyValueStoreTest,
                         ::testing::Values(Kind::kInMemory, Kind::kDirectory),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kInMemory ? "InMemory" : "Directory";
                         });

TEST(DirectoryKeyValueStoreTest, SharedBetweenInstances) {
  HardTimeLimit limit(30);
  ScopedTempDir dir{"g4comm"};
  DirectoryKeyValueStore a(dir.path());
  DirectoryKeyValueStore b(dir.path());
  ASSERT_TRUE(a.Set("x/y", "z").ok());
  EXPECT_EQ(*b.Get("x/y", absl::Seconds(1)), "z");
}

TEST(DirectoryKeyValueStoreTest, MissingDirectoryIsAnError) {
  DirectoryKeyValueStore store("/nonexistent/g4comm/dir");
  EXPECT_FALSE(store.Set("k", "v").ok());
}

}  // namespace
}  // namespace g4
