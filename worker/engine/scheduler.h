// Continuous batching: chooses, each step, which sequences run and how many of their tokens,
// under a token budget (max_num_batched_tokens), a cost budget (max_num_batched_tokens
// token-equivalents of the StepCostModel: attention over a long context costs more than its
// token count) and a sequence limit (max_num_seqs).
//
// Order: every running sequence that is decoding gets its one token first (latency of running
// requests before admitting new ones), then running sequences still prefilling (or recomputing
// after a preemption) get chunks, then waiting requests are admitted — highest priority first,
// FCFS within a priority — each with a first chunk of at most the remaining budget (chunked
// prefill). A step thus mixes decodes with prefill chunks. While requests wait, running prefills
// leave them up to half of the cost budget (what their prompts would cost), so a short request
// arriving during a long prefill is admitted at the next step; and every running prefill gets at
// least min_prefill_chunk tokens per step, however much the decodes cost, so a long prompt
// progresses every step (waiting requests keep their reserve even then). A prefill alone in the
// engine (nothing else running or waiting) is limited by tokens only. docs/long_context.md.
//
// Paged KV (a KvBlockManager given): a chunk runs only once Allocate() gave it slots. A prefill
// chunk shrinks to what fits; when not even one token fits (a decode), the most recently
// admitted running sequence is preempted by recompute — Free()d, its num_computed reset, moved to
// the front of `waiting` keeping its generated tokens, so it later recomputes prompt + outputs —
// until the chunk fits or the sequence preempts itself. Admission adopts the cached prefix
// (AddSequence: num_computed starts at P) and admits only when the whole first chunk fits — or,
// when nothing is running (no page will come free by waiting), with the largest first chunk that
// fits; no admission in a step that preempted.
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
  // Tokens every running prefill gets per step (token budget permitting), even when the cost
  // budget is spent.
  int min_prefill_chunk = 16;
  // The fixed time of a step in cost units (StepTimeEstimator::OverheadCost; 0: unknown). When
  // decodes run, prefill chunks get at most this plus the decodes' cost: a step with prefill
  // then takes at most about twice what the decodes alone would.
  double step_overhead_cost = 0;
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
