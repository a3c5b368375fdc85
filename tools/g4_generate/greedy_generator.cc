#include "tools/g4_generate/greedy_generator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {

absl::StatusOr<std::vector<int32_t>> GenerateGreedy(Gemma4Model& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options,
                                                    const LogitsSink& sink) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: no tokens");
  std::vector<int32_t> out;
  if (options.max_new_tokens <= 0) return out;
  std::unique_ptr<SequenceKvCache> seq = model.NewSequence();
  SequenceChunk chunk{seq.get(), prompt};
  G4_ASSIGN_OR_RETURN(std::vector<float> logits, model.Forward({&chunk, 1}, LogitsFor::kLastToken));
  for (int i = 0; i < options.max_new_tokens; ++i) {
    const int32_t token =
        static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    if (sink) sink(token, logits);
    out.push_back(token);
    const auto& stop = options.stop_token_ids;
    if (std::find(stop.begin(), stop.end(), token) != stop.end()) break;
    if (i + 1 == options.max_new_tokens) break;
    chunk = SequenceChunk{seq.get(), absl::MakeConstSpan(&out.back(), 1)};
    G4_ASSIGN_OR_RETURN(logits, model.Forward({&chunk, 1}, LogitsFor::kLastToken));
  }
  return out;
}

}  // namespace g4
