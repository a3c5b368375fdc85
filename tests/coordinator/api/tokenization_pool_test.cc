#include "coordinator/api/tokenization_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
  // Two run (each caller starts once the previous one's work runs, so none finds the queue of
  // one full), then a third waits in the queue.
  for (int i = 0; i < 2; ++i) {
    callers.emplace_back([&] { ok += pool.Run(work).ok(); });
    ASSERT_TRUE(Eventually([&] { return running.load() == i + 1; }));
  }
  callers.emplace_back([&] { ok += pool.Run(work).ok(); });
  // The queue holds one waiting prompt: once the third caller is in it, a fourth overflows.
  ASSERT_TRUE(Eventually([&] { return pool.queued() == 1; }));
  EXPECT_EQ(pool.Run(work).status().code(), absl::StatusCode::kResourceExhausted);
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

// A text prompt is tokenized on the pool, not on the thread that serves it, and other streams
// keep receiving tokens while it waits there: the pool's only thread is held by other work, the
// text request waits in its queue, and every stream still gets tokens; once the thread is free
// the request is tokenized and streams. (No latency bound here: the pool's effect on other
// streams' ITL is a measurement, docs/long_context.md.)
TEST(TokenizationPoolTest, OtherStreamsKeepStreamingWhileAPromptWaitsForTokenization) {
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
  TokenizationPool pool({/*threads=*/1, /*max_queue=*/8, /*nice=*/0});
  InferenceOptions io;
  io.model_id = "dense";
  io.vocab_size = 262144;
  io.tokenization_pool = &pool;
  GenerationService service(io, Codec(), &fleet, &router);

  constexpr int kStreams = 4;
  std::atomic<bool> stop{false};
  std::atomic<int> tokens[kStreams] = {};
  std::vector<std::thread> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.emplace_back([&, i] {
      pb::GenerateRequest r;
      r.mutable_token_ids()->add_ids(2);
      r.mutable_token_ids()->add_ids(100 + i);
      GenerationSink sink;
      sink.write = [&](const pb::GenerateResponse&) {
        ++tokens[i];
        return !stop.load();
      };
      (void)service.Generate("test", r, sink);
    });
  }
  auto all_streams_reach = [&](int n) {
    return Eventually([&] {
      for (const auto& t : tokens) {
        if (t.load() < n) return false;
      }
      return true;
    });
  };
  ASSERT_TRUE(all_streams_reach(5));

  // Hold the pool's only thread.
  absl::Notification busy, release;
  std::thread holder([&] {
    (void)pool.Run([&] {
      busy.Notify();
      release.WaitForNotification();
      return absl::StatusOr<std::vector<int32_t>>(std::vector<int32_t>{});
    });
  });
  busy.WaitForNotification();
  std::atomic<bool> text_done{false};
  std::atomic<int> text_tokens{0};
  absl::Status text_status;
  std::thread text([&] {
    pb::GenerateRequest r;
    r.set_text("The quick brown fox jumps over the lazy dog.");
    GenerationSink sink;
    sink.write = [&](const pb::GenerateResponse&) { return ++text_tokens < 3; };
    text_status = service.Generate("test", r, sink);
    text_done = true;
  });
  // While the prompt waits for the pool, every stream gets 10 more tokens.
  int before[kStreams];
  for (int i = 0; i < kStreams; ++i) before[i] = tokens[i].load();
  EXPECT_TRUE(Eventually([&] {
    for (int i = 0; i < kStreams; ++i) {
      if (tokens[i].load() < before[i] + 10) return false;
    }
    return true;
  }));
  EXPECT_FALSE(text_done.load()) << "the text prompt did not wait for the pool";
  EXPECT_EQ(text_tokens.load(), 0);

  release.Notify();
  holder.join();
  EXPECT_TRUE(Eventually([&] { return text_done.load(); }));
  text.join();
  EXPECT_GE(text_tokens.load(), 1) << text_status;
  stop = true;
  for (std::thread& t : streams) t.join();
  service.Shutdown();
}

}  // namespace
}  // namespace g4
