// Continuous batching: chooses, each step, which sequences run and how many of their tokens,
// under a token budget (max_num_batched_tokens) and a sequence limit (max_num_seqs).
//
// Order: every running sequence that is decoding gets its one token first (latency of running
// requests before admitting new ones), then running sequences still prefilling get chunks of
// their prompts, then waiting requests are admitted — highest priority first, FCFS within a
// priority — each with a first chunk of at most the remaining budget (chunked prefill). A step
// thus mixes decodes with prefill chunks.
#ifndef G4SERVE_WORKER_ENGINE_SCHEDULER_H_
#define G4SERVE_WORKER_ENGINE_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "worker/engine/sequence.h"

namespace g4 {

struct SchedulerOptions {
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
};

struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t begin = 0;  // first token index (== seq->num_computed)
  int64_t len = 0;
  bool samples = false;  // the chunk reaches the sequence's last known token: sample after it
};

// Picks the chunks of one step. `running` is in admission order; admitted sequences are moved
// from `waiting` to the end of `running`.
std::vector<ScheduledChunk> ScheduleStep(const SchedulerOptions& options,
                                         std::vector<Sequence*>& running,
                                         std::vector<Sequence*>& waiting);

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_SCHEDULER_H_
