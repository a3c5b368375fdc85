// Generation over Gemma4Model for one sequence (the reference path behind g4-generate): prefill,
// then one token per step through the sampler (greedy when temperature is 0).
#ifndef G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_
#define G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/model/gemma4_model.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

struct GreedyOptions {
  int max_new_tokens = 0;
  std::vector<int> stop_token_ids;  // generation stops after emitting one of these
};

// Called once per generated token with the logits that chose it.
using LogitsSink = std::function<void(int32_t token, absl::Span<const float> logits)>;

// Called after each generated token; returning false ends generation (stop strings, which need
// text, are matched by the caller this way).
using TokenFn = std::function<bool(int32_t token)>;

// Generates with `params` (validated; max_tokens bounds the length; stop token ids end it).
// Returns the generated ids.
absl::StatusOr<std::vector<int32_t>> Generate(Gemma4Model& model, absl::Span<const int32_t> prompt,
                                              const SamplingParams& params,
                                              const LogitsSink& sink = nullptr,
                                              const TokenFn& on_token = nullptr);

// Greedy decoding (argmax, the lowest id on ties, as torch.argmax).
absl::StatusOr<std::vector<int32_t>> GenerateGreedy(Gemma4Model& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options,
                                                    const LogitsSink& sink = nullptr);

}  // namespace g4

#endif  // G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_
