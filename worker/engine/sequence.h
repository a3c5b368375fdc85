// One request's state inside the engine (leader only).
#ifndef G4SERVE_WORKER_ENGINE_SEQUENCE_H_
#define G4SERVE_WORKER_ENGINE_SEQUENCE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/grammar/matcher.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

enum class EngineFinish { kNone, kStop, kLength, kAborted, kError };

// What the engine reports for a request after a step: the new tokens, and at the end why.
struct EngineOutput {
  std::vector<SampleResult> tokens;
  EngineFinish finish = EngineFinish::kNone;
  int32_t matched_stop_token = -1;
  absl::Status error;  // for kError
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_prompt_tokens = 0;  // prompt tokens served from the prefix cache at admission
  // Set on a request's first output only: seconds from Submit to its first scheduled step.
  std::optional<double> queue_seconds;
};

// Called on the engine thread; must not block (hand the output to another thread).
using OutputCallback = std::function<void(const EngineOutput&)>;

struct EngineRequest {
  std::string id;
  std::vector<int32_t> prompt;
  SamplingParams params;  // resolved and validated
  int priority = 0;       // higher first
  OutputCallback on_output;
  // Structured outputs: the constraint's state, advanced by every sampled token. Null:
  // unconstrained. Kept across preemption (recompute replays tokens, it never re-samples them).
  std::shared_ptr<grammar::GrammarMatcher> grammar;
  // Tokens generated for this request by an earlier attempt on another replica (a migration):
  // the sequence continues after them as if this engine had produced them (Engine::Submit).
  std::vector<int32_t> resume_output;
};

struct Sequence {
  uint64_t seq_id = 0;    // the replica-wide cache key
  uint64_t arrival = 0;   // FCFS order
  EngineRequest request;
  std::vector<int32_t> tokens;  // prompt then outputs
  int64_t num_computed = 0;     // tokens whose K/V are cached on every rank
  int num_preemptions = 0;      // times its KV was freed for recompute
  int64_t num_cached_prompt = 0;  // prompt tokens adopted from the prefix cache (first admission)
  std::unique_ptr<SequenceSamplingState> sampling;
  absl::Time arrival_time;
  std::optional<absl::Time> first_scheduled;  // when its first chunk was scheduled
  bool reported = false;                      // an output was reported already

  int64_t num_prompt() const { return static_cast<int64_t>(request.prompt.size()); }
  bool prefilling() const { return num_computed < num_prompt(); }
  // More than the one token of a decode step still to compute (prefill, or recompute after a
  // preemption).
  bool needs_chunk() const { return static_cast<int64_t>(tokens.size()) - num_computed > 1; }
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_SEQUENCE_H_
