// Continuous batching: chooses, each step, which sequences run and how many of their tokens,
// under a token budget (max_num_batched_tokens), a cost budget (token-equivalents of the
// StepCostModel: attention over a long context costs far more than its token count) and a
// sequence limit (max_num_seqs).
//
// Order within a step:
//  1. every running sequence that is decoding gets its one token (latency of running requests
//     first);
//  2. the prefill budget: next to decodes, prefill may add at most (decode_step_slowdown − 1)
//     times what the decodes' step costs (its fixed overhead, step_overhead_cost, plus the
//     decodes' own cost), so a step carrying decodes takes at most about decode_step_slowdown
//     times a decode-only step; without decodes, a step costs at most lone_prefill_overheads
//     overheads (or max_num_batched_tokens, whichever is more), which bounds how long an arrival
//     waits for the step in flight; before the overhead is known, a prefill alone in the engine
//     is limited by tokens only;
//  3. running prefills that can finish within one step's token budget ("short"), oldest first;
//  4. admission of waiting requests — highest priority first, FCFS within a priority — each with
//     a first chunk of what budget is left (chunked prefill);
//  5. the long running prefills, oldest first, with what remains — and, when the step carries
//     latency-bound work (decodes, short prompts, admissions) and the overhead is known, at most
//     (decode_step_slowdown − 1) times that work's own step (overhead + its cost), so a short
//     prompt admitted during a long prefill is not held up by a large chunk of it.
// Every running prefill progresses every step: its floor — min_prefill_chunk tokens, shrunk to
// what the step's prefill budget can carry, at least one token — is held back for it from steps
// 3 and 4. So a short prompt arriving during a long prefill is scheduled at the next step ahead
// of the long prompt's next chunk, and its TTFT is about its unloaded TTFT plus one step.
// docs/long_context.md.
//
// Paged KV (a KvBlockManager given): a chunk runs only once Allocate() gave it slots. A prefill
// chunk shrinks to what fits; when not even one token fits (a decode), the most recently
// admitted running sequence is preempted by recompute — Free()d, its num_computed reset, moved to
// the front of `waiting` keeping its generated tokens, so it later recomputes prompt + outputs —
// until the chunk fits or the sequence preempts itself. Admission adopts the cached prefix
// (AddSequence: num_computed starts at P) and admits only when the whole first chunk fits — or,
// when nothing is running (no page will come free by waiting), with the largest first chunk that
// fits; no admission in a step that preempted before it.
#ifndef G4SERVE_WORKER_ENGINE_SCHEDULER_H_
#define G4SERVE_WORKER_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "worker/engine/sequence.h"
#include "worker/engine/step_cost_model.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace g4 {

struct SchedulerOptions {
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
  // What a chunk costs; the default charges its tokens only.
  StepCostModel cost;
  // Tokens every running prefill gets per step (token budget permitting), unless the step's
  // prefill cost budget cannot carry that many; then as many as it can, at least one.
  int min_prefill_chunk = 16;
  // The fixed time of a step in cost units (StepTimeEstimator::OverheadCost; 0: unknown).
  double step_overhead_cost = 0;
  // With the overhead known: a step that carries decodes takes at most this multiple of the
  // decodes' own step (prefill adds at most (this − 1) · (overhead + the decodes' cost)). Below
  // the 2x goal, leaving room for the estimate's error on a noisy machine.
  double decode_step_slowdown = 1.8;
  // With the overhead known: a step without decodes costs at most this many overheads (or
  // max_num_batched_tokens, whichever is more). Prefill throughput loses about 1/this to the
  // extra steps' fixed time; an arrival waits at most about this many overheads for the step in
  // flight.
  double lone_prefill_overheads = 8;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t begin = 0;  // first token index (== seq->num_computed)
  int64_t len = 0;
  bool samples = false;  // the chunk reaches the sequence's last known token: sample after it
};

// What a paged step did besides the chunks.
struct KvScheduleEvents {
  std::vector<Sequence*> preempted;  // freed, back in `waiting`; drop their caches on every rank
  std::vector<Sequence*> failed;     // cannot fit even alone: freed, removed; the engine fails them
  int64_t prefix_queried_tokens = 0;  // tokens of the sequences admitted this step
  int64_t prefix_hit_tokens = 0;      // of those, adopted from the prefix cache
};

// Picks the chunks of one step. `running` is in admission order; admitted sequences are moved
// from `waiting` to the end of `running`. With `kv` (may be null: no paging) every chunk has
// its slots allocated on return and `events` (required then) says what else happened.
std::vector<ScheduledChunk> ScheduleStep(const SchedulerOptions& options,
                                         std::vector<Sequence*>& running,
                                         std::vector<Sequence*>& waiting,
                                         KvBlockManager* kv = nullptr,
                                         KvScheduleEvents* events = nullptr);

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_SCHEDULER_H_
