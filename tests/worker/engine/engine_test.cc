// The leader engine on the tiny golden models: single rank and a 2-rank replica (threads over
// Gloo on loopback), concurrency, abort, admission errors and a dead follower.
#include "worker/engine/engine.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/ops.h"
#include "tests/worker/model/golden_reference.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/key_value_store.h"

namespace g4 {
namespace {

SamplingParams Greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

// Collects one request's outputs (called on the engine thread).
struct Collector {
  absl::Mutex mu;
  std::vector<int32_t> tokens;
  EngineFinish finish = EngineFinish::kNone;
  absl::Status error;
  int32_t cached_prompt_tokens = -1;  // from the final output
  int32_t completion_tokens = -1;     // from the final output
  absl::Notification done;

  // Notifies after releasing `mu`: a waiter may destroy the collector as soon as it is told.
  OutputCallback Callback() {
    return [this](const EngineOutput& out) {
      {
        absl::MutexLock lock(&mu);
        for (const auto& t : out.tokens) tokens.push_back(t.token);
        if (out.finish == EngineFinish::kNone) return;
        finish = out.finish;
        error = out.error;
        cached_prompt_tokens = out.cached_prompt_tokens;
        completion_tokens = out.completion_tokens;
      }
      done.Notify();
    };
  }
};

std::unique_ptr<ModelRunner> Runner(const std::string& variant, CpuOpsOptions ops = {}) {
  auto model = Gemma4Model::Load(testing::GoldenDir(variant), CreateCpuOps(ops));
  EXPECT_TRUE(model.ok()) << model.status();
  return std::make_unique<ModelRunner>(std::move(*model));
}

TEST(EngineTest, GreedyMatchesTransformersAndBatchingChangesNothing) {
  const auto ref = testing::LoadGoldenReference("dense");
  EngineOptions options;
  options.scheduler.max_num_batched_tokens = 5;  // forces chunked prefill mixed with decodes
  Engine engine(Runner("dense"), nullptr, options);
  engine.Start();
  std::vector<std::unique_ptr<Collector>> collectors;
  for (int i = 0; i < 4; ++i) {  // the same prompt four times, concurrently
    collectors.push_back(std::make_unique<Collector>());
    EngineRequest r{absl::StrCat("r", i), ref.greedy_prompt,
                    Greedy(static_cast<int>(ref.greedy_tokens.size())), 0,
                    collectors.back()->Callback()};
    ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  }
  for (auto& c : collectors) {
    ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_EQ(c->finish, EngineFinish::kLength);
    EXPECT_EQ(c->tokens, ref.greedy_tokens);
  }
  EXPECT_EQ(engine.Stats().running, 0);
}

TEST(EngineTest, RejectsBadRequests) {
  Engine engine(Runner("dense"), nullptr, EngineOptions{});
  EXPECT_EQ(engine.Submit(EngineRequest{"a", {}, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Submit(EngineRequest{"b", {2, 100000}, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> too_long(engine.max_model_len(), 7);
  EXPECT_EQ(engine.Submit(EngineRequest{"c", too_long, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(engine.Submit(EngineRequest{"d", {2, 3}, Greedy(1), 0, nullptr}).ok());
  EXPECT_EQ(engine.Submit(EngineRequest{"d", {2, 3}, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kInvalidArgument);  // duplicate id
}

// Issue 9 #6: with --max-num-seqs 1 a 33-token prompt waited forever (its first chunk needs 3
// sliding pages of 16, the pool sized for one decoding sequence holds 2). It now runs.
TEST(EngineTest, APromptLargerThanTheSlidingPoolRunsAlone) {
  EngineOptions options;
  options.scheduler.max_num_seqs = 1;
  Engine engine(Runner("dense"), nullptr, options);
  engine.Start();
  Collector c;
  ASSERT_TRUE(
      engine.Submit(EngineRequest{"r", std::vector<int32_t>(33, 7), Greedy(4), 0, c.Callback()})
          .ok());
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(30)))
      << "still waiting: " << engine.Stats().waiting;
  EXPECT_EQ(c.finish, EngineFinish::kLength);
  EXPECT_EQ(c.tokens.size(), 4u);
}

// A prompt that cannot fit the KV pools even alone is refused at once, naming the limit.
TEST(EngineTest, APromptTheKvCacheCannotHoldIsRefusedNamingTheLimit) {
  EngineOptions options;
  options.num_global_pages = 2;  // 32 tokens of 16
  Engine engine(Runner("dense"), nullptr, options);
  EXPECT_EQ(engine.max_model_len(), 32);
  absl::Status s =
      engine.Submit(EngineRequest{"a", std::vector<int32_t>(32, 7), Greedy(1), 0, nullptr});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr("the KV cache holds at most 32 tokens per sequence"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("--num-global-pages"));
  EXPECT_TRUE(
      engine.Submit(EngineRequest{"b", std::vector<int32_t>(31, 7), Greedy(1), 0, nullptr}).ok());
}

TEST(EngineTest, FullQueueIsResourceExhausted) {
  EngineOptions options;
  options.max_queue = 2;
  Engine engine(Runner("dense"), nullptr, options);  // not started: nothing leaves the queue
  ASSERT_TRUE(engine.Submit(EngineRequest{"a", {2}, Greedy(1), 0, nullptr}).ok());
  ASSERT_TRUE(engine.Submit(EngineRequest{"b", {2}, Greedy(1), 0, nullptr}).ok());
  EXPECT_EQ(engine.Submit(EngineRequest{"c", {2}, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(EngineTest, AbortFreesTheSequence) {
  Engine engine(Runner("dense"), nullptr, EngineOptions{});
  engine.Start();
  Collector c;
  ASSERT_TRUE(engine.Submit(EngineRequest{"long", {2, 3, 4}, Greedy(400), 0, c.Callback()}).ok());
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(engine.Abort("long"));
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(c.finish, EngineFinish::kAborted);
  EXPECT_FALSE(engine.Abort("long"));
  EXPECT_EQ(engine.Stats().running + engine.Stats().waiting, 0);
}

TEST(EngineTest, SeededSamplingIsReproducibleAndBatchIndependent) {
  const auto ref = testing::LoadGoldenReference("moe");
  Engine engine(Runner("moe"), nullptr, EngineOptions{});
  engine.Start();
  SamplingParams p;
  p.temperature = 1.0;
  p.seed = 1234;
  p.max_tokens = 12;
  Collector alone;
  ASSERT_TRUE(engine.Submit(EngineRequest{"alone", ref.greedy_prompt, p, 0, alone.Callback()}).ok());
  ASSERT_TRUE(alone.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  Collector batched, other;
  SamplingParams q = p;
  q.seed = 99;
  ASSERT_TRUE(engine.Submit(EngineRequest{"other", ref.prefill.tokens, q, 0, other.Callback()}).ok());
  ASSERT_TRUE(engine.Submit(EngineRequest{"batched", ref.greedy_prompt, p, 0, batched.Callback()}).ok());
  ASSERT_TRUE(batched.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(other.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(alone.tokens, batched.tokens);
  EXPECT_EQ(alone.tokens.size(), 12u);
}

// A migrated request (resume_output = the tokens an earlier replica generated) continues the
// uninterrupted run exactly: greedy, and seeded sampling with penalties and min_tokens (the
// sampler's step index, output counts and min/max_tokens continue from the resumed tokens). The
// recompute computes the resumed tokens in a prefill chunk where the uninterrupted run decoded
// them one by one: bitwise-equal logits need the batch-invariant kernels (the long seeded run
// below diverges without them, at a draw within float noise of a boundary).
TEST(EngineTest, ResumedRequestContinuesTheUninterruptedRun) {
  const auto ref = testing::LoadGoldenReference("dense");
  Engine engine(Runner("dense", CpuOpsOptions{.batch_invariant = true}), nullptr,
                EngineOptions{});
  engine.Start();
  SamplingParams seeded;
  seeded.temperature = 0.9;
  seeded.top_k = 40;
  seeded.seed = 777;
  seeded.repetition_penalty = 1.3;
  seeded.presence_penalty = 0.5;
  seeded.frequency_penalty = 0.4;
  seeded.min_tokens = 10;
  seeded.max_tokens = 14;
  SamplingParams long_seeded;  // diverges at token 53 without batch-invariant kernels
  long_seeded.temperature = 0.9;
  long_seeded.top_k = 50;
  long_seeded.seed = 4242;
  long_seeded.repetition_penalty = 1.2;
  long_seeded.max_tokens = 440;
  const int n = static_cast<int>(ref.greedy_tokens.size());
  for (const SamplingParams& params : {Greedy(n), seeded, long_seeded}) {
    const std::string tag = !params.seed.has_value() ? "greedy"
                            : *params.seed == 777    ? "seeded"
                                                     : "long-seeded";
    Collector full;
    ASSERT_TRUE(
        engine.Submit(EngineRequest{tag, ref.greedy_prompt, params, 0, full.Callback()}).ok());
    ASSERT_TRUE(full.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    ASSERT_EQ(full.finish, EngineFinish::kLength) << tag;
    const int total = static_cast<int>(full.tokens.size());
    ASSERT_EQ(total, *params.max_tokens) << tag;
    for (int k : {1, 5, 18, total - 1}) {
      if (k >= total) continue;
      Collector rest;
      EngineRequest r{absl::StrCat(tag, "-resume", k), ref.greedy_prompt, params, 0,
                      rest.Callback()};
      r.resume_output.assign(full.tokens.begin(), full.tokens.begin() + k);
      ASSERT_TRUE(engine.Submit(std::move(r)).ok()) << tag << " k=" << k;
      ASSERT_TRUE(rest.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
      EXPECT_EQ(rest.finish, EngineFinish::kLength) << tag << " k=" << k;
      EXPECT_EQ(rest.tokens, std::vector<int32_t>(full.tokens.begin() + k, full.tokens.end()))
          << tag << " k=" << k;
      EXPECT_EQ(rest.completion_tokens, total) << tag << " k=" << k;  // usage counts them once
    }
  }
  // Resumed tokens that already end the request, or are not tokens at all, are refused.
  EngineRequest done{"done", ref.greedy_prompt, Greedy(3), 0, nullptr};
  done.resume_output = {5, 6, 7};  // max_tokens reached
  EXPECT_EQ(engine.Submit(std::move(done)).code(), absl::StatusCode::kInvalidArgument);
  SamplingParams stops = Greedy(10);
  stops.stop_token_ids = {9};
  EngineRequest stopped{"stopped", ref.greedy_prompt, stops, 0, nullptr};
  stopped.resume_output = {5, 9};
  EXPECT_EQ(engine.Submit(std::move(stopped)).code(), absl::StatusCode::kInvalidArgument);
  EngineRequest bad{"bad", ref.greedy_prompt, Greedy(10), 0, nullptr};
  bad.resume_output = {-1};
  EXPECT_EQ(engine.Submit(std::move(bad)).code(), absl::StatusCode::kInvalidArgument);
  EngineRequest too_long{"long", ref.greedy_prompt, Greedy(10), 0, nullptr};
  too_long.resume_output.assign(engine.max_model_len(), 5);
  EXPECT_EQ(engine.Submit(std::move(too_long)).code(), absl::StatusCode::kInvalidArgument);
}

// A 2-rank replica: rank 0 runs the engine, rank 1 a follower; each holds half of the weights.
struct Replica {
  InMemoryKeyValueStore store;
  std::vector<std::unique_ptr<Communicator>> control, data;
  std::unique_ptr<Engine> engine;
  std::thread follower;
  absl::Status follower_status;
  EngineOptions options;

  absl::Status Start(const std::string& variant, int world, int ep, bool run_follower = true) {
    control.resize(world);
    data.resize(world);
    std::vector<std::thread> connect;
    std::vector<absl::Status> st(world);
    for (int r = 0; r < world; ++r) {
      connect.emplace_back([&, r] {
        for (auto [vec, prefix] : {std::pair{&control, "control"}, std::pair{&data, "data"}}) {
          GlooOptions o;
          o.rank = r;
          o.size = world;
          o.store = &store;
          o.prefix = prefix;
          o.timeout = absl::Seconds(5);
          auto c = CreateGlooCommunicator(o);
          if (!c.ok()) {
            st[r] = c.status();
            return;
          }
          (*vec)[r] = std::move(*c);
        }
      });
    }
    for (auto& t : connect) t.join();
    for (auto& s : st) if (!s.ok()) return s;
    std::vector<std::unique_ptr<ModelRunner>> runners(world);
    std::vector<std::thread> load;
    for (int r = 0; r < world; ++r) {
      load.emplace_back([&, r] {
        auto m = Gemma4Model::LoadShard(testing::GoldenDir(variant), ShardConfig{r, world, ep},
                                        data[r].get(), CreateCpuOps());
        if (!m.ok()) {
          st[r] = m.status();
          return;
        }
        runners[r] = std::make_unique<ModelRunner>(std::move(*m));
      });
    }
    for (auto& t : load) t.join();
    for (auto& s : st) if (!s.ok()) return s;
    engine = std::make_unique<Engine>(std::move(runners[0]), control[0].get(), options);
    engine->Start();
    if (!run_follower) return absl::OkStatus();
    follower = std::thread([this, runner = std::move(runners[1])]() mutable {
      follower_status = Follower(std::move(runner), control[1].get()).Run();
    });
    return absl::OkStatus();
  }
};

TEST(EngineTest, TwoRankReplicaMatchesTransformers) {
  for (auto [variant, ep] : {std::pair{"dense", 1}, std::pair{"moe", 2}}) {
    const auto ref = testing::LoadGoldenReference(variant);
    Replica replica;
    ASSERT_TRUE(replica.Start(variant, 2, ep).ok());
    Collector a, b;
    ASSERT_TRUE(replica.engine->Submit(EngineRequest{"a", ref.greedy_prompt,
                                                     Greedy(ref.greedy_tokens.size()), 0,
                                                     a.Callback()}).ok());
    ASSERT_TRUE(replica.engine->Submit(EngineRequest{"b", ref.greedy_prompt,
                                                     Greedy(ref.greedy_tokens.size()), 0,
                                                     b.Callback()}).ok());
    ASSERT_TRUE(a.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    ASSERT_TRUE(b.done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_EQ(a.tokens, ref.greedy_tokens) << variant;
    EXPECT_EQ(b.tokens, ref.greedy_tokens) << variant;
    absl::SleepFor(absl::Milliseconds(500));  // idle: heartbeats keep the follower waiting
    replica.engine->Shutdown();
    replica.follower.join();
    EXPECT_TRUE(replica.follower_status.ok()) << replica.follower_status;
  }
}

// Rank 1 never runs its follower (a worker that hangs): the leader's first collective times
// out, the request fails with UNAVAILABLE, and the engine refuses new work. (A worker process
// that dies is covered by the multi-process tests.)
TEST(EngineTest, UnresponsiveFollowerFailsRequestsInBoundedTime) {
  Replica replica;
  ASSERT_TRUE(replica.Start("dense", 2, 1, /*run_follower=*/false).ok());
  Collector c;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(replica.engine->Submit(EngineRequest{"x", {2, 3, 4}, Greedy(50), 0, c.Callback()}).ok());
  ASSERT_TRUE(c.done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_EQ(c.finish, EngineFinish::kError);
  EXPECT_EQ(c.error.code(), absl::StatusCode::kUnavailable) << c.error;
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  EXPECT_TRUE(replica.engine->Stats().failed);
  EXPECT_EQ(replica.engine->Submit(EngineRequest{"y", {2}, Greedy(1), 0, nullptr}).code(),
            absl::StatusCode::kUnavailable);
  replica.engine->Shutdown();
}

}  // namespace
}  // namespace g4

namespace g4 {
namespace {

// Paging options whose pools hold one greedy request (plus a block) but not four.
EngineOptions TinyPages(const testing::GoldenReference& ref) {
  EngineOptions options;
  options.block_size = 4;
  const int64_t len = static_cast<int64_t>(ref.greedy_prompt.size() + ref.greedy_tokens.size());
  options.num_global_pages = (len + 3) / 4 + 1;
  options.num_sliding_pages = 4;
  options.scheduler.max_num_batched_tokens = 6;
  return options;
}

void SubmitGreedy(Engine& engine, const testing::GoldenReference& ref, int n,
                  std::vector<std::unique_ptr<Collector>>* collectors, const std::string& tag) {
  for (int i = 0; i < n; ++i) {
    collectors->push_back(std::make_unique<Collector>());
    EngineRequest r{absl::StrCat(tag, i), ref.greedy_prompt,
                    Greedy(static_cast<int>(ref.greedy_tokens.size())), 0,
                    collectors->back()->Callback()};
    ASSERT_TRUE(engine.Submit(std::move(r)).ok());
  }
}

// Four requests that cannot all hold their KV at once: decodes preempt the most recent one, which
// recomputes prompt + outputs later; every request still gets the golden greedy tokens, and every
// page is returned at the end.
TEST(EnginePagedTest, PreemptionUnderTinyPageBudgetKeepsGoldenTokens) {
  for (const char* variant : {"dense", "efeat"}) {
    const auto ref = testing::LoadGoldenReference(variant);
    EngineOptions options = TinyPages(ref);
    options.enable_prefix_caching = false;  // every admission needs fresh pages
    Engine engine(Runner(variant), nullptr, options);
    engine.Start();
    std::vector<std::unique_ptr<Collector>> collectors;
    SubmitGreedy(engine, ref, 4, &collectors, "p");
    for (auto& c : collectors) {
      ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(60))) << variant;
      EXPECT_EQ(c->finish, EngineFinish::kLength) << variant;
      EXPECT_EQ(c->tokens, ref.greedy_tokens) << variant;
    }
    const EngineStats stats = engine.Stats();
    EXPECT_GT(stats.preemptions, 0u) << variant;
    EXPECT_EQ(stats.kv_global.total, options.num_global_pages);
    EXPECT_EQ(stats.kv_global.used, 0) << variant;
    EXPECT_EQ(stats.kv_sliding.used, 0) << variant;
  }
}

// The same prompt again: the second request adopts the cached full blocks (stats show the hit)
// and produces the same golden tokens.
TEST(EnginePagedTest, PrefixCacheHitOnRepeatedPrompt) {
  const auto ref = testing::LoadGoldenReference("dense");
  EngineOptions options;
  options.block_size = 2;
  Engine engine(Runner("dense"), nullptr, options);
  engine.Start();
  std::vector<std::unique_ptr<Collector>> first, second;
  SubmitGreedy(engine, ref, 1, &first, "a");
  ASSERT_TRUE(first[0]->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(engine.Stats().prefix_hit_tokens, 0);
  SubmitGreedy(engine, ref, 1, &second, "b");
  ASSERT_TRUE(second[0]->done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  EXPECT_EQ(first[0]->tokens, ref.greedy_tokens);
  EXPECT_EQ(second[0]->tokens, ref.greedy_tokens);
  const EngineStats stats = engine.Stats();
  const int64_t prompt = static_cast<int64_t>(ref.greedy_prompt.size());
  EXPECT_EQ(stats.prefix_queried_tokens, 2 * prompt);
  EXPECT_EQ(stats.prefix_hit_tokens, (prompt - 1) / 2 * 2);  // whole blocks, last token recomputed
  EXPECT_GT(stats.prefix_hit_tokens, 0);
  // Usage: the second request reports its cached prompt tokens, the first none.
  EXPECT_EQ(first[0]->cached_prompt_tokens, 0);
  EXPECT_EQ(second[0]->cached_prompt_tokens, stats.prefix_hit_tokens);
  EXPECT_EQ(stats.kv_global.used, 0);
  EXPECT_GT(stats.kv_global.cached, 0);
}

// A 2-rank replica under the tiny page budget with prefix caching: the follower mirrors block
// tables from the descriptors (including preemptions and adopted prefixes).
TEST(EnginePagedTest, TwoRankReplicaWithPagingMatchesTransformers) {
  const auto ref = testing::LoadGoldenReference("dense");
  Replica replica;
  replica.options = TinyPages(ref);
  ASSERT_TRUE(replica.Start("dense", 2, 1).ok());
  std::vector<std::unique_ptr<Collector>> collectors;
  SubmitGreedy(*replica.engine, ref, 4, &collectors, "r");
  for (auto& c : collectors) {
    ASSERT_TRUE(c->done.WaitForNotificationWithTimeout(absl::Seconds(60)));
    EXPECT_EQ(c->tokens, ref.greedy_tokens);
  }
  EXPECT_GT(replica.engine->Stats().preemptions, 0u);
  replica.engine->Shutdown();
  replica.follower.join();
  EXPECT_TRUE(replica.follower_status.ok()) << replica.follower_status;
}

}  // namespace
}  // namespace g4
