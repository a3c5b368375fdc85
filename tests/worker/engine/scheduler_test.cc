#include "worker/engine/scheduler.h"

#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "worker/kv_cache/kv_block_manager.h"

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

SchedulerOptions Options(int max_num_seqs, int max_num_batched_tokens) {
  SchedulerOptions o;
  o.max_num_seqs = max_num_seqs;
  o.max_num_batched_tokens = max_num_batched_tokens;
  return o;
}

TEST(SchedulerTest, ChunksLongPromptsUnderTheTokenBudget) {
  auto a = Seq(1, 10);
  std::vector<Sequence*> running, waiting = {a.get()};
  SchedulerOptions o;
  o.max_num_seqs = 4;
  o.max_num_batched_tokens = 4;
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
  auto step = ScheduleStep(Options(8, 7), running, waiting);
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
  auto step = ScheduleStep(Options(2, 100), running, waiting);
  EXPECT_EQ(step.size(), 2u);
  EXPECT_EQ(waiting.size(), 1u);
  EXPECT_EQ(waiting[0], c.get());  // FCFS within a priority
}

// A cost model in which every (query, key) pair of the global layers costs 1/1024 token.
SchedulerOptions CostOptions(int budget) {
  SchedulerOptions o;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = budget;
  o.cost.global_per_pair = 1.0 / 1024;
  o.min_prefill_chunk = 8;
  return o;
}

TEST(SchedulerTest, CostBudgetShrinksChunksDeepIntoALongPrompt) {
  auto long_prompt = Seq(1, 20000);
  auto other = Seq(2, 3);  // decoding: the long prompt is not alone
  other->num_computed = 3;
  other->tokens.push_back(9);
  std::vector<Sequence*> running = {other.get()}, waiting = {long_prompt.get()};
  const SchedulerOptions o = CostOptions(256);
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 2u);
  const int64_t first = step[1].len;
  EXPECT_GT(first, 100);
  EXPECT_LE(o.cost.ChunkCost(0, first), 256);
  other->tokens.push_back(9);  // the next decode
  ++other->num_computed;
  long_prompt->num_computed = 10000;  // deep into the prompt: attention dominates
  step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 2u);
  EXPECT_LT(step[1].len, first / 4);
  EXPECT_GE(step[1].len, 8);
  EXPECT_LE(o.cost.ChunkCost(10000, step[1].len), 256);
  // Alone in the engine, the prompt is limited by tokens only.
  std::vector<Sequence*> alone = {long_prompt.get()}, none;
  step = ScheduleStep(o, alone, none);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].len, 256);
}

TEST(SchedulerTest, ShortPromptsArrivingDuringALongPrefillGoFirstAndItStillProgresses) {
  auto long_prompt = Seq(1, 20000);
  long_prompt->num_computed = 10000;
  std::vector<Sequence*> running = {long_prompt.get()};
  std::vector<std::unique_ptr<Sequence>> shorts;
  std::vector<Sequence*> waiting;
  for (int i = 0; i < 4; ++i) {
    shorts.push_back(Seq(2 + i, 16));
    waiting.push_back(shorts.back().get());
  }
  const SchedulerOptions o = CostOptions(256);
  auto step = ScheduleStep(o, running, waiting);
  // Every short request is admitted whole, ahead of the long prompt's chunk, which still gets
  // at least its floor: the step's budget is respected.
  ASSERT_EQ(step.size(), 5u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(step[i].seq, shorts[i].get());
    EXPECT_EQ(step[i].len, 16);
  }
  EXPECT_EQ(step[4].seq, long_prompt.get());
  EXPECT_GE(step[4].len, 8);
  double cost = 0;
  for (const ScheduledChunk& c : step) cost += o.cost.ChunkCost(c.begin, c.len);
  EXPECT_LE(cost, 256);
  EXPECT_TRUE(waiting.empty());
}

// Decodes running, a long prompt prefilling, short prompts arriving, the overhead known: decodes,
// then the short prompts whole, then the long prompt's chunk with what remains of the prefill
// budget ((slowdown − 1) · (overhead + the decodes' cost)).
TEST(SchedulerTest, ShortPromptsGoBeforeTheLongPromptsChunkNextToDecodes) {
  auto decoding = Seq(1, 3);
  decoding->num_computed = 3;
  decoding->tokens.push_back(9);
  auto long_prompt = Seq(2, 20000);
  long_prompt->num_computed = 5000;
  auto short1 = Seq(3, 40), short2 = Seq(4, 40);
  std::vector<Sequence*> running = {decoding.get(), long_prompt.get()},
                         waiting = {short1.get(), short2.get()};
  SchedulerOptions o = CostOptions(2048);
  o.step_overhead_cost = 200;
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 4u);
  EXPECT_EQ(step[0].seq, decoding.get());
  EXPECT_EQ(step[1].seq, short1.get());
  EXPECT_EQ(step[1].len, 40);
  EXPECT_EQ(step[2].seq, short2.get());
  EXPECT_EQ(step[2].len, 40);
  EXPECT_EQ(step[3].seq, long_prompt.get());
  EXPECT_GE(step[3].len, 1);
  const double decode_cost = o.cost.ChunkCost(3, 1);
  double prefill = 0;
  for (size_t i = 1; i < step.size(); ++i) prefill += o.cost.ChunkCost(step[i].begin, step[i].len);
  EXPECT_LE(prefill, (o.decode_step_slowdown - 1) * (200 + decode_cost) + 1e-9);
}

// The analytic cost model of the long-context test checkpoint (one global layer of four).
StepCostModel LongModelCost() {
  StepCostModel m;
  m.global_per_pair = 1.26e-3;
  m.sliding_per_pair = 2.27e-3;
  m.sliding_window = 1024;
  return m;
}

// No decodes, the overhead known: the long prompt alone gets large steps (lone_prefill_overheads),
// but in the step that admits short prompts its chunk adds at most (slowdown − 1) times the
// short prompts' own step, so they are not held up by it.
TEST(SchedulerTest, AStepAdmittingShortPromptsKeepsTheLongChunkSmall) {
  auto long_prompt = Seq(1, 40000);
  long_prompt->num_computed = 20000;
  SchedulerOptions o;
  o.max_num_batched_tokens = 2048;
  o.cost = LongModelCost();
  o.step_overhead_cost = 770;
  std::vector<Sequence*> running = {long_prompt.get()}, waiting;
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 1u);
  const double lone = o.cost.ChunkCost(20000, step[0].len);
  EXPECT_GT(lone, 4 * 770);
  EXPECT_LE(lone, o.lone_prefill_overheads * 770);
  long_prompt->num_computed += step[0].len;
  std::vector<std::unique_ptr<Sequence>> shorts;
  for (int i = 0; i < 16; ++i) {
    shorts.push_back(Seq(2 + i, 64));
    waiting.push_back(shorts.back().get());
  }
  step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 17u);
  double shorts_cost = 0;
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(step[i].seq, shorts[i].get());
    EXPECT_EQ(step[i].len, 64);
    shorts_cost += o.cost.ChunkCost(0, 64);
  }
  EXPECT_EQ(step[16].seq, long_prompt.get());
  EXPECT_GE(step[16].len, 1);
  EXPECT_LE(o.cost.ChunkCost(step[16].begin, step[16].len),
            (o.decode_step_slowdown - 1) * (770 + shorts_cost) + 1e-9);
  EXPECT_TRUE(waiting.empty());
}

TEST(SchedulerTest, EveryPrefillProgressesWhenDecodesSpendTheBudget) {
  std::vector<std::unique_ptr<Sequence>> decoding;
  std::vector<Sequence*> running, waiting;
  for (int i = 0; i < 10; ++i) {  // decodes at 30 000 tokens of context: ~30 each
    decoding.push_back(Seq(10 + i, 30000));
    decoding.back()->num_computed = 30000;
    decoding.back()->tokens.push_back(9);
    running.push_back(decoding.back().get());
  }
  auto long_prompt = Seq(1, 20000);
  long_prompt->num_computed = 5000;
  running.push_back(long_prompt.get());
  SchedulerOptions o = CostOptions(256);
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 11u);
  EXPECT_EQ(step[10].seq, long_prompt.get());
  EXPECT_EQ(step[10].len, 1);  // nothing left of the budget: one token, not a stall
  // With budget left, the floor is min_prefill_chunk tokens.
  o.max_num_batched_tokens = 2048;
  step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 11u);
  EXPECT_GE(step[10].len, 8);
}

// The cost of the chunks of `step` that are (or are not) `seq`'s.
double Cost(const SchedulerOptions& o, const std::vector<ScheduledChunk>& step, const Sequence* seq,
            bool of_seq) {
  double cost = 0;
  for (const ScheduledChunk& c : step) {
    if ((c.seq == seq) == of_seq) cost += o.cost.ChunkCost(c.begin, c.len);
  }
  return cost;
}

TEST(SchedulerTest, StepOverheadLimitsPrefillNextToDecodes) {
  auto decoding = Seq(1, 3);
  decoding->num_computed = 3;
  decoding->tokens.push_back(9);
  auto long_prompt = Seq(2, 5000);
  std::vector<Sequence*> running = {decoding.get(), long_prompt.get()}, waiting;
  SchedulerOptions o = CostOptions(2048);
  o.step_overhead_cost = 100;  // a step's fixed time is worth 100 token-equivalents
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 2u);
  // The prefill may add at most (slowdown − 1) · (overhead + the decode's cost).
  const double cap = (o.decode_step_slowdown - 1) * (100 + o.cost.ChunkCost(3, 1));
  EXPECT_LE(o.cost.ChunkCost(0, step[1].len), cap + 1e-9);
  EXPECT_GE(o.cost.ChunkCost(0, step[1].len), cap - 2);
}


// The benchmark's shape (tools/bench/long_prefill_bench.sh): 16 streams decode while a 65 536-
// token prompt prefills, with the overhead the estimator measured there (~770 token-equivalents
// for a ~27 ms step). At every step, from the first chunk to the last: every stream decodes, the
// long prompt progresses, and the step (overhead + its cost) is within decode_step_slowdown of
// the decodes' own step — unless the long prompt's chunk is its one-token floor.
TEST(SchedulerTest, ALongPrefillNextToDecodesKeepsEveryStepWithinTheSlowdown) {
  SchedulerOptions o;
  o.max_num_seqs = 64;
  o.max_num_batched_tokens = 2048;
  o.cost = LongModelCost();
  o.step_overhead_cost = 770;
  std::vector<std::unique_ptr<Sequence>> streams;
  std::vector<Sequence*> running, waiting;
  for (int i = 0; i < 16; ++i) {
    streams.push_back(Seq(10 + i, 64));
    streams.back()->num_computed = 64;
    streams.back()->tokens.push_back(9);
    running.push_back(streams.back().get());
  }
  auto long_prompt = Seq(1, 65536);
  waiting.push_back(long_prompt.get());
  int steps = 0;
  while (long_prompt->num_computed < 65536) {
    const int64_t before = long_prompt->num_computed;
    auto step = ScheduleStep(o, running, waiting);
    ASSERT_EQ(step.size(), 17u) << "step " << steps;
    const double decodes = Cost(o, step, long_prompt.get(), /*of_seq=*/false);
    const double prefill = Cost(o, step, long_prompt.get(), /*of_seq=*/true);
    const ScheduledChunk& chunk = step.back();
    ASSERT_EQ(chunk.seq, long_prompt.get());
    ASSERT_GE(chunk.len, 1) << "step " << steps;
    if (chunk.len > 1) {
      ASSERT_LE(o.step_overhead_cost + decodes + prefill,
                o.decode_step_slowdown * (o.step_overhead_cost + decodes) + 1e-6)
          << "step " << steps << " at position " << before;
    }
    for (const ScheduledChunk& c : step) {
      c.seq->num_computed += c.len;
      if (c.seq != long_prompt.get()) c.seq->tokens.push_back(9);
    }
    ++steps;
  }
  // Deep into the prompt a token costs ~84 token-equivalents, and the chunks shrink to ~7.
  EXPECT_GT(steps, 65536 / 2048);
}

// Once the overhead is known, a prefill alone (no decodes) is bounded too, so an arrival waits at
// most about lone_prefill_overheads overheads for the step in flight; before, tokens only.
TEST(SchedulerTest, ALonePrefillsStepIsBoundedOnceTheOverheadIsKnown) {
  auto long_prompt = Seq(1, 40000);
  long_prompt->num_computed = 30000;
  std::vector<Sequence*> running = {long_prompt.get()}, waiting;
  SchedulerOptions o;
  o.max_num_batched_tokens = 2048;
  o.cost = LongModelCost();
  auto step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].len, 2048);  // overhead unknown: tokens only
  o.step_overhead_cost = 770;
  step = ScheduleStep(o, running, waiting);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_LE(o.cost.ChunkCost(30000, step[0].len), o.lone_prefill_overheads * 770);
  EXPECT_GT(o.cost.ChunkCost(30000, step[0].len + 1), o.lone_prefill_overheads * 770);
}

TEST(SchedulerTest, AnIdleEngineAdmitsARequestWhateverItsFirstTokenCosts) {
  // Its first token would cost 1 + 5000/1024 > the whole budget of 4 (as after a long cached
  // prefix): with nothing else running it is admitted all the same.
  auto s = Seq(1, 5010);
  s->num_computed = 5000;
  std::vector<Sequence*> running, waiting = {s.get()};
  auto step = ScheduleStep(CostOptions(4), running, waiting);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].len, 4);
}

std::unique_ptr<KvBlockManager> Pages(int64_t global, int64_t sliding) {
  KvBlockManagerOptions o;
  o.block_size = 4;
  o.num_global_pages = global;
  o.num_sliding_pages = sliding;
  o.sliding_window = 4;
  auto kv = KvBlockManager::Create(o);
  EXPECT_TRUE(kv.ok()) << kv.status();
  return std::move(*kv);
}

// Mimics the engine after a step: chunks computed, a token sampled for those that sample.
void Ran(const std::vector<ScheduledChunk>& step) {
  for (const ScheduledChunk& c : step) {
    c.seq->num_computed += c.len;
    if (c.samples) c.seq->tokens.push_back(7);
  }
}

TEST(SchedulerTest, AdmitsOnlyWhenPagesFitAndPreemptsTheNewestByRecompute) {
  auto kv = Pages(/*global=*/4, /*sliding=*/8);  // 16 global slots
  auto a = Seq(1, 8), b = Seq(2, 8), c = Seq(3, 8);
  std::vector<Sequence*> running, waiting = {a.get(), b.get(), c.get()};
  SchedulerOptions o = Options(8, 64);
  KvScheduleEvents ev;
  auto step = ScheduleStep(o, running, waiting, kv.get(), &ev);
  ASSERT_EQ(step.size(), 2u);  // c does not fit: FCFS waits
  EXPECT_EQ(running.size(), 2u);
  EXPECT_EQ(waiting.size(), 1u);
  EXPECT_EQ(kv->Usage(KvPool::kGlobal).used, 4);
  Ran(step);
  // Both decode at position 8: a needs a fifth global page, none is free → b (newest) is
  // preempted, freed, and goes back to the front of the queue with its sampled token.
  KvScheduleEvents ev2;
  step = ScheduleStep(o, running, waiting, kv.get(), &ev2);
  ASSERT_EQ(ev2.preempted.size(), 1u);
  EXPECT_EQ(ev2.preempted[0], b.get());
  EXPECT_EQ(b->num_computed, 0);
  EXPECT_EQ(b->tokens.size(), 9u);
  ASSERT_EQ(step.size(), 1u);
  EXPECT_EQ(step[0].seq, a.get());
  ASSERT_EQ(waiting.size(), 2u);
  EXPECT_EQ(waiting[0], b.get());
  EXPECT_FALSE(kv->Contains(2));
  EXPECT_TRUE(kv->Validate().ok());
}

// Issue 9 #6: a prompt whose whole first chunk needs more sliding pages than a pool sized for
// decoding holds (here 9 tokens = 3 pages of 4, pool of 2) used to wait in `waiting` forever
// with --max-num-seqs 1. Alone, it now starts with the chunk that fits and runs to the end.
TEST(SchedulerTest, ALoneRequestStartsWithTheChunkThatFits) {
  auto kv = Pages(/*global=*/32, /*sliding=*/2);
  auto a = Seq(1, 9), b = Seq(2, 9);
  std::vector<Sequence*> running, waiting = {a.get(), b.get()};
  SchedulerOptions o;
  o.max_num_seqs = 1;
  o.max_num_batched_tokens = 64;
  int steps = 0;
  while ((!running.empty() || !waiting.empty()) && steps < 100) {
    KvScheduleEvents ev;
    auto step = ScheduleStep(o, running, waiting, kv.get(), &ev);
    ASSERT_FALSE(step.empty()) << "stalled at step " << steps;
    EXPECT_TRUE(ev.failed.empty());
    Ran(step);
    for (size_t i = 0; i < running.size();) {  // a sequence finishes after 3 new tokens
      Sequence* s = running[i];
      if (s->tokens.size() == 12 && s->num_computed == 11) {
        ASSERT_TRUE(kv->Free(s->seq_id).ok());
        running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
    ++steps;
  }
  EXPECT_TRUE(running.empty() && waiting.empty()) << "not done after " << steps << " steps";
  EXPECT_TRUE(kv->Validate().ok());
}

// 256 running sequences decode for 200 steps: every step schedules each of them for one token
// (no preemption, nothing left waiting), the global pool grows by whole pages as the contexts
// do, and the sliding pool stays within its per-sequence bound. (What such a step costs is
// measured by tools/bench/scheduler_bench.cc, not here.)
TEST(SchedulerTest, PagedDecodeOf256SequencesSchedulesEachEveryStep) {
  auto kv = Pages(/*global=*/256 * 80, /*sliding=*/256 * 32);  // prefill holds its chunk
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<Sequence*> running, waiting;
  for (int i = 0; i < 256; ++i) {
    seqs.push_back(Seq(i + 1, 100));
    seqs.back()->tokens[0] = i;  // distinct prompts
    waiting.push_back(seqs.back().get());
  }
  SchedulerOptions o;
  o.max_num_seqs = 256;
  o.max_num_batched_tokens = 1 << 20;
  KvScheduleEvents ev;
  Ran(ScheduleStep(o, running, waiting, kv.get(), &ev));
  ASSERT_EQ(running.size(), 256u);
  ASSERT_TRUE(waiting.empty());
  const int kSteps = 200;
  for (int step = 0; step < kSteps; ++step) {
    KvScheduleEvents e;
    auto chunks = ScheduleStep(o, running, waiting, kv.get(), &e);
    ASSERT_EQ(chunks.size(), 256u) << "step " << step;
    ASSERT_TRUE(e.preempted.empty()) << "step " << step;
    ASSERT_TRUE(e.failed.empty()) << "step " << step;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const ScheduledChunk& c = chunks[i];
      ASSERT_EQ(c.seq, running[i]);  // admission order
      ASSERT_EQ(c.begin, 100 + step);
      ASSERT_EQ(c.len, 1);
      ASSERT_TRUE(c.samples);
      (void)kv->TakeDelta(c.seq->seq_id);
      c.seq->num_computed += c.len;
      ASSERT_TRUE(kv->CommitFullBlocks(c.seq->seq_id, absl::MakeConstSpan(c.seq->tokens.data(),
                                                                         c.seq->num_computed))
                      .ok());
      c.seq->tokens.push_back(7);
    }
  }
  EXPECT_TRUE(waiting.empty());
  // Each sequence computed 100 + 200 positions: ceil(300 / 4) = 75 global pages of 4 slots.
  EXPECT_EQ(kv->Usage(KvPool::kGlobal).used, 256 * 75);
  // Window 4, block 4: a decoding sequence holds at most ceil(3 / 4) + 1 = 2 sliding pages.
  EXPECT_LE(kv->Usage(KvPool::kSliding).used, 256 * 2);
  EXPECT_TRUE(kv->Validate().ok());
}

}  // namespace
}  // namespace g4
