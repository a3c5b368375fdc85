// Per-request sampling parameters: what a request may set (SamplingRequest, every field optional),
// the resolved values the sampler runs with (SamplingParams), the defaults taken from a
// checkpoint's generation_config.json, and validation with errors that name the API field.
// Semantics, order and defaults: docs/sampling.md.
#ifndef G4SERVE_WORKER_SAMPLING_SAMPLING_PARAMS_H_
#define G4SERVE_WORKER_SAMPLING_SAMPLING_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/generation_config.h"

namespace g4 {

// Most top-N alternatives a request may ask for (OpenAI's top_logprobs limit).
inline constexpr int kMaxLogprobs = 20;

// Which distribution logprobs describe (vLLM's logprobs_mode, restricted to two choices).
enum class LogprobsMode {
  kRaw,        // log_softmax of the model's logits (after the final softcap); the default
  kProcessed,  // log_softmax after penalties and temperature, before top-k/top-p/min-p
};

// The values the sampler runs with. Every field has a neutral value that disables it.
struct SamplingParams {
  double temperature = 1.0;         // 0 = greedy (argmax, lowest id on ties)
  int top_k = 0;                    // 0 = disabled; > vocab behaves as disabled
  double top_p = 1.0;               // in (0, 1]; 1 = disabled
  double min_p = 0.0;               // in [0, 1]; 0 = disabled
  double repetition_penalty = 1.0;  // > 0; 1 = disabled; prompt + output tokens
  double presence_penalty = 0.0;    // in [-2, 2]; output tokens only
  double frequency_penalty = 0.0;   // in [-2, 2]; output tokens only
  std::optional<uint64_t> seed;     // unset: a fresh per-process random seed per sequence
  std::optional<int> logprobs;      // unset: none; N in [0, 20]: chosen token + top-N alternatives
  LogprobsMode logprobs_mode = LogprobsMode::kRaw;
  std::optional<int> max_tokens;  // unset: until a stop (or the context limit, enforced elsewhere)
  int min_tokens = 0;             // stop token ids are masked until this many tokens exist
  std::vector<int> stop_token_ids;  // resolved: request ids plus the checkpoint's eos ids
  std::vector<std::string> stop;    // stop strings, matched on detokenized text
};

// What a request sets; unset fields take defaults (ApplyDefaults).
struct SamplingRequest {
  std::optional<double> temperature;
  std::optional<int> top_k;
  std::optional<double> top_p;
  std::optional<double> min_p;
  std::optional<double> repetition_penalty;
  std::optional<double> presence_penalty;
  std::optional<double> frequency_penalty;
  std::optional<uint64_t> seed;
  std::optional<int> logprobs;
  LogprobsMode logprobs_mode = LogprobsMode::kRaw;
  std::optional<int> max_tokens;
  std::optional<int> min_tokens;
  std::vector<int> stop_token_ids;  // added to the checkpoint's eos ids
  std::vector<std::string> stop;
  bool ignore_eos = false;  // true: the checkpoint's eos ids do not stop generation
};

// Fills unset fields from generation_config.json: when it says do_sample, temperature / top_k /
// top_p default to its values (temperature 1 and top-k/top-p disabled where it has none); when it
// does not, the default is greedy (temperature 0), as in transformers. Stop token ids are the
// request's plus config.eos_token_ids unless ignore_eos. Does not validate.
SamplingParams ApplyDefaults(const SamplingRequest& request, const GenerationConfig& config);

// InvalidArgument naming the offending field (e.g. "top_p must be in (0, 1], got 1.5") for values
// outside the ranges documented on SamplingParams, non-finite numbers, stop token ids outside
// [0, vocab_size), empty stop strings, max_tokens < 1 and min_tokens outside [0, max_tokens].
absl::Status Validate(const SamplingParams& params, int64_t vocab_size);

// ApplyDefaults then Validate.
absl::StatusOr<SamplingParams> ResolveSamplingParams(const SamplingRequest& request,
                                                     const GenerationConfig& config,
                                                     int64_t vocab_size);

}  // namespace g4

#endif  // G4SERVE_WORKER_SAMPLING_SAMPLING_PARAMS_H_
