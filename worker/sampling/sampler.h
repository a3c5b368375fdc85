// Picks the next token of a sequence from one row of logits (Gemma4Model::Forward output, after
// the final softcap). Pipeline, per row (docs/sampling.md):
//   min_tokens mask -> repetition/presence/frequency penalties -> temperature (0: argmax)
//   -> top-k -> top-p -> min-p -> draw.
// The draw at output step i uses a uniform number that depends only on (seed, i), so a seeded
// sequence gives the same tokens in every run, whatever else is in the batch.
//
// Thread-compatible: a SequenceSamplingState belongs to one sequence; distinct states may be
// sampled on different threads.
#ifndef G4SERVE_WORKER_SAMPLING_SAMPLER_H_
#define G4SERVE_WORKER_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

enum class FinishReason {
  kNone,       // keep generating
  kStopToken,  // the token is one of params.stop_token_ids (it is in the token ids)
  kLength,     // max_tokens reached
};

// The per-sequence state the sampler needs: resolved params, the prompt's token set (for the
// repetition penalty), the counts of generated tokens and the RNG seed.
class SequenceSamplingState {
 public:
  // `params` should have passed Validate(). `prompt_token_ids` may be empty.
  SequenceSamplingState(SamplingParams params, absl::Span<const int32_t> prompt_token_ids);

  const SamplingParams& params() const { return params_; }
  // params.seed, or a per-process random seed chosen at construction.
  uint64_t seed() const { return seed_; }
  int64_t num_output_tokens() const { return num_output_tokens_; }
  const std::vector<int32_t>& output_token_ids() const { return output_token_ids_; }
  bool finished() const { return finish_reason_ != FinishReason::kNone; }
  FinishReason finish_reason() const { return finish_reason_; }

  // Records a generated token (Sample() calls it) and returns whether it ends the sequence.
  FinishReason AppendOutputToken(int32_t token);

  // The uniform number in [0, 1) for output step `step`: SplitMix64 at position `step` of the
  // stream seeded by seed(). Exposed for tests.
  double UniformForStep(int64_t step) const;

 private:
  friend class SamplerInternal;

  SamplingParams params_;
  uint64_t seed_;
  absl::flat_hash_set<int32_t> prompt_tokens_;  // filled only when repetition_penalty != 1
  absl::flat_hash_map<int32_t, int32_t> output_counts_;
  std::vector<int32_t> output_token_ids_;
  int64_t num_output_tokens_ = 0;
  FinishReason finish_reason_ = FinishReason::kNone;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct SampleResult {
  int32_t token = 0;
  // Set when params.logprobs is set (see LogprobsMode for which distribution).
  std::optional<float> logprob;
  std::optional<int64_t> rank;  // 1 + number of tokens with a strictly larger logprob
  // The top params.logprobs tokens, by logprob descending (lower id first on ties).
  std::vector<TokenLogprob> top_logprobs;
  FinishReason finish_reason = FinishReason::kNone;
};

// Samples the next token from `logits_row` (vocab_size floats) and appends it to `state`.
// Errors: InvalidArgument for an empty row, NaN logits, or prompt/output/stop ids outside the
// row; FailedPrecondition when the state has already finished or every token is masked. On error
// the state does not change.
absl::StatusOr<SampleResult> Sample(absl::Span<const float> logits_row,
                                    SequenceSamplingState& state);

// Samples row r of `logits` ([states.size(), vocab_size], row-major) for states[r]. Each result
// equals what Sample(row r, *states[r]) gives: rows never influence each other. On error no state
// changes.
absl::StatusOr<std::vector<SampleResult>> SampleBatch(
    absl::Span<const float> logits, int64_t vocab_size,
    absl::Span<SequenceSamplingState* const> states);

}  // namespace g4

#endif  // G4SERVE_WORKER_SAMPLING_SAMPLER_H_
