#include "coordinator/api/tokenization_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "coordinator/api/generation.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/router/router.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "tests/coordinator/fake_worker.h"

namespace g4 {
namespace {

using ::g4::testing::Codec;
using ::g4::testing::Eventually;
using ::g4::testing::FakeWorker;
using ::g4::testing::TinyConfig;
namespace pb = ::g4serve::v1;

TEST(TokenizationPoolTest, ReturnsResultsAndErrors) {
  TokenizationPool pool({});
  absl::StatusOr<std::vector<int32_t>> ok = pool.Run([] {
    return absl::StatusOr<std::vector<int32_t>>(std::vector<int32_t>{1, 2, 3});
  });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, (std::vector<int32_t>{1, 2, 3}));
  absl::StatusOr<std::vector<int32_t>> bad = pool.Run(
      [] { return absl::StatusOr<std::vector<int32_t>>(absl::InvalidArgumentError("text: x")); });
  EXPECT_EQ(bad.status(), absl::InvalidArgumentError("text: x"));
}

TEST(TokenizationPoolTest, RunsAtMostItsThreadsAtOnceAndBoundsTheQueue) {
  TokenizationPool pool({/*threads=*/2, /*max_queue=*/1, /*nice=*/0});
  std::atomic<int> running{0}, most{0};
  absl::Notification release;
  auto work = [&] {
    most = std::max(most.load(), ++running);
    release.WaitForNotification();
    --running;
    return absl::StatusOr<std::vector<int32_t>>(std::vector<int32_t>{7});
  };
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i) {  // two run, one waits in the queue
    callers.emplace_back([&] { ok += pool.Run(work).ok(); });
  }
  ASSERT_TRUE(Eventually([&] { return running.load() == 2; }));
  // The queue holds one waiting prompt; wait until the third caller is in it, then overflow.
  absl::StatusOr<std::vector<int32_t>> overflow;
  ASSERT_TRUE(Eventually([&] {
    overflow = pool.Run(work);
    return overflow.status().code() == absl::StatusCode::kResourceExhausted;
  }));
  EXPECT_EQ(running.load(), 2);
  release.Notify();
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(ok.load(), 3);
  EXPECT_EQ(most.load(), 2);
}

TEST(TokenizationPoolTest, ThreadsRunAtALowerPriority) {
  errno = 0;
  const int caller = getpriority(PRIO_PROCESS, static_cast<pid_t>(syscall(SYS_gettid)));
  ASSERT_EQ(errno, 0);
  TokenizationPool pool({1, 8, /*nice=*/5});
  int seen = -100;
  ASSERT_TRUE(pool.Run([&] {
                    seen = getpriority(PRIO_PROCESS, static_cast<pid_t>(syscall(SYS_gettid)));
                    return absl::StatusOr<std::vector<int32_t>>(std::vector<int32_t>{});
                  })
                  .ok());
  EXPECT_EQ(seen, std::min(caller + 5, 19));
}

// Streams keep receiving tokens while several 1 MB text prompts are tokenized: the pool runs
// them one at a time at a lower priority, off the threads that relay tokens.
TEST(TokenizationPoolTest, OtherStreamsKeepTheirInterTokenLatencyDuringLargePrompts) {
  KeyValueStoreServer store;
  FleetOptions o;
  o.model_dir = "/models/dense";
  o.model_name = "dense";
  o.model_config = TinyConfig();
  o.health_interval = absl::Milliseconds(100);
  o.log = [](const std::string&) {};
  FleetManager fleet(o, &store);
  Router router(&fleet);
  FakeWorker worker;
  worker.endless = true;
  worker.step_delay = absl::Milliseconds(10);
  ASSERT_TRUE(fleet.Register(worker.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, absl::Seconds(20)));
  TokenizationPool pool({});
  InferenceOptions io;
  io.model_id = "dense";
  io.vocab_size = 262144;
  io.tokenization_pool = &pool;
  GenerationService service(io, Codec(), &fleet, &router);

  constexpr int kStreams = 4;
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::vector<std::vector<absl::Time>> arrivals(kStreams);
  std::vector<std::thread> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.emplace_back([&, i] {
      pb::GenerateRequest r;
      r.mutable_token_ids()->add_ids(2);
      r.mutable_token_ids()->add_ids(100 + i);
      GenerationSink sink;
      sink.write = [&](const pb::GenerateResponse&) {
        absl::MutexLock lock(&mu);
        arrivals[i].push_back(absl::Now());
        return !stop.load();
      };
      (void)service.Generate(r, sink);
    });
  }
  ASSERT_TRUE(Eventually([&] {
    absl::MutexLock lock(&mu);
    for (const auto& a : arrivals) {
      if (a.size() < 5) return false;
    }
    return true;
  }));

  // Four 1 MB prompts at once. They exceed the tiny model's context (512 tokens): each ends
  // with INVALID_ARGUMENT once it is tokenized.
  std::string big;
  while (big.size() < (1 << 20)) big += "The quick brown fox jumps over the lazy dog. 12345 ";
  const absl::Time window_start = absl::Now();
  std::vector<std::thread> large;
  std::atomic<int> too_long{0};
  for (int i = 0; i < 4; ++i) {
    large.emplace_back([&] {
      pb::GenerateRequest r;
      r.set_text(big);
      GenerationSink sink;
      sink.write = [](const pb::GenerateResponse&) { return false; };
      const absl::Status s = service.Generate(r, sink);
      too_long += s.code() == absl::StatusCode::kInvalidArgument &&
                  absl::StrContains(s.message(), "maximum context");
    });
  }
  for (std::thread& t : large) t.join();
  const absl::Time window_end = absl::Now();
  stop = true;
  for (std::thread& t : streams) t.join();
  service.Shutdown();
  EXPECT_EQ(too_long.load(), 4);

  absl::Duration worst = absl::ZeroDuration();
  absl::MutexLock lock(&mu);
  for (const auto& a : arrivals) {
    int inside = 0;
    for (size_t j = 1; j < a.size(); ++j) {
      if (a[j] < window_start || a[j - 1] > window_end) continue;
      worst = std::max(worst, a[j] - a[j - 1]);
      ++inside;
    }
    EXPECT_GT(inside, 0) << "a stream got no token while the prompts were tokenized";
  }
  std::cout << "tokenizing 4 x 1 MB took " << window_end - window_start
            << "; largest gap of the other streams " << worst << "\n";
  // The fake worker streams every 10 ms; tokenizing inline on 2 busy cores would hold streams up
  // for a good part of the window. Generous for a loaded CI machine.
  EXPECT_LT(worst, absl::Milliseconds(500));
}

}  // namespace
}  // namespace g4
