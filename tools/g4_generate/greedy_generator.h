// Greedy decoding over Gemma4Model, one sequence (the reference path behind g4-generate).
#ifndef G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_
#define G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "worker/model/gemma4_model.h"

namespace g4 {

struct GreedyOptions {
  int max_new_tokens = 0;
  std::vector<int> stop_token_ids;  // generation stops after emitting one of these
};

// Called once per generated token with the logits that chose it.
using LogitsSink = std::function<void(int32_t token, absl::Span<const float> logits)>;

// Prefills `prompt`, then decodes one token at a time, picking the argmax (the lowest id on
// ties, as torch.argmax). Returns the generated ids.
absl::StatusOr<std::vector<int32_t>> GenerateGreedy(Gemma4Model& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options,
                                                    const LogitsSink& sink = nullptr);

}  // namespace g4

#endif  // G4SERVE_TOOLS_G4_GENERATE_GREEDY_GENERATOR_H_
