#include "coordinator/auth/api_key_file_watcher.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ApiKeyFileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = absl::StrCat(::testing::TempDir(), "/api_key_file_watcher_test.", getpid(), ".",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // Replaces the file by a rename, as the kubelet updates a mounted Secret.
  void Write(const std::string& text) {
    std::ofstream(path_ + ".new") << text;
    std::filesystem::rename(path_ + ".new", path_);
  }

  std::function<void(const std::string&)> Logger() {
    return [this](const std::string& line) {
      absl::MutexLock lock(&mu_);
      log_ += line + "\n";
    };
  }
  std::string Log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }

  std::string path_;
  absl::Mutex mu_;
  std::string log_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ApiKeyFileWatcherTest, AChangedFileReplacesItsKeysAndKeepsTheFixedOnes) {
  Write("sk-old\n");
  absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"sk-flag", "sk-old"});
  ASSERT_TRUE(keys.ok());
  ApiKeyFileWatcher watcher(path_, "sk-old\n", {"sk-flag"}, &*keys, absl::Hours(1), Logger());
  EXPECT_FALSE(watcher.CheckNow());  // unchanged

  Write("# rotated\nsk-new\nsk-newer\n");
  EXPECT_TRUE(watcher.CheckNow());
  EXPECT_FALSE(keys->Identify("sk-old").has_value());
  EXPECT_EQ(keys->Identify("sk-new"), ApiKeys::IdentityOf("sk-new"));
  EXPECT_EQ(keys->Identify("sk-newer"), ApiKeys::IdentityOf("sk-newer"));
  EXPECT_TRUE(keys->Identify("sk-flag").has_value());
  EXPECT_EQ(keys->size(), 3u);
  EXPECT_THAT(Log(), HasSubstr("changed: 3 API key(s) in force"));
  EXPECT_THAT(Log(), Not(HasSubstr("sk-")));
}

TEST_F(ApiKeyFileWatcherTest, ABrokenOrEmptyFileKeepsTheKeysInForce) {
  Write("sk-good\n");
  absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"sk-good"});
  ASSERT_TRUE(keys.ok());
  ApiKeyFileWatcher watcher(path_, "sk-good\n", {}, &*keys, absl::Hours(1), Logger());
  for (const std::string& bad : {std::string("# nothing\n\n"), std::string("sk bad key\n")}) {
    Write(bad);
    EXPECT_FALSE(watcher.CheckNow());
    EXPECT_TRUE(keys->enabled());
    EXPECT_TRUE(keys->Identify("sk-good").has_value());
  }
  std::filesystem::remove(path_);
  EXPECT_FALSE(watcher.CheckNow());
  EXPECT_FALSE(watcher.CheckNow());  // an unreadable file is reported once
  EXPECT_TRUE(keys->Identify("sk-good").has_value());
  const std::string log = Log();
  EXPECT_THAT(log, HasSubstr("no key in"));
  EXPECT_THAT(log, HasSubstr(":1: API key with whitespace"));
  EXPECT_THAT(log, HasSubstr("cannot read"));
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 3) << log;
  EXPECT_THAT(log, HasSubstr("the API keys in force stay"));
  EXPECT_THAT(log, Not(HasSubstr("sk bad")));
}

// The thread does the same on its own, every interval.
TEST_F(ApiKeyFileWatcherTest, TheThreadPicksUpAChange) {
  Write("sk-a\n");
  absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"sk-a"});
  ASSERT_TRUE(keys.ok());
  ApiKeyFileWatcher watcher(path_, "sk-a\n", {}, &*keys, absl::Milliseconds(20), Logger());
  Write("sk-b\n");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!keys->Identify("sk-b").has_value() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(keys->Identify("sk-b").has_value());
  EXPECT_FALSE(keys->Identify("sk-a").has_value());
}

}  // namespace
}  // namespace g4
