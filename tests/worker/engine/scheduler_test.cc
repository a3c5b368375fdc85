#include "worker/engine/scheduler.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace g4 {
namespace {

std::unique_ptr<Sequence> Seq(uint64_t id, int prompt, int priority = 0) {
  auto s = std::make_unique<Sequence>();
  s->seq_id = id;
  s->arrival = id;
  s->request.prompt.assign(prompt, 5);
  s->request.priority = priority;
  s->tokens = s->request.prompt;
  return s;
}

TEST(SchedulerTest, ChunksLongPromptsUnderTheTokenBudget) {
  auto a = Seq(1, 10);
  std::vector<Sequence*> running, waiting = {a.get()};
  SchedulerOptions o{4, 4};
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].len, 4);
  EXPECT_FALSE(step[0].samples);
  a->num_computed = 8;
  step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].begin, 8);
  EXPECT_EQ(step[0].len, 2);
  EXPECT_TRUE(step[0].samples);
}

TEST(SchedulerTest, DecodesFirstThenPrefillsThenAdmissionByPriority) {
  auto decoding = Seq(1, 3);
  decoding->num_computed = 3;
  decoding->tokens.push_back(9);  // one sampled token not yet fed back
  auto low = Seq(2, 5, 0), high = Seq(3, 5, 7);
  std::vector<Sequence*> running = {decoding.get()}, waiting = {low.get(), high.get()};
  auto step = ScheduleStep(SchedulerOptions{8, 7}, running, waiting);
  ASSERT_EQ(step.size(), 3u);
  EXPECT_EQ(step[0].seq, decoding.get());
  EXPECT_EQ(step[0].len, 1);
  EXPECT_TRUE(step[0].samples);
  EXPECT_EQ(step[1].seq, high.get());  // higher priority admitted first
  EXPECT_EQ(step[1].len, 5);
  EXPECT_EQ(step[2].seq, low.get());
  EXPECT_EQ(step[2].len, 1);  // what is left of the budget
  EXPECT_TRUE(waiting.empty());
  EXPECT_EQ(running.size(), 3u);
}

TEST(SchedulerTest, RespectsMaxNumSeqs) {
  auto a = Seq(1, 2), b = Seq(2, 2), c = Seq(3, 2);
  std::vector<Sequence*> running, waiting = {a.get(), b.get(), c.get()};
  auto step = ScheduleStep(SchedulerOptions{2, 100}, running, waiting);
  EXPECT_EQ(step.size(), 2u);
  EXPECT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0], c.get());  // FCFS within a priority
}

}  // namespace
}  // namespace g4
