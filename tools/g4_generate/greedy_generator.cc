#include "tools/g4_generate/greedy_generator.h"

#include <memory>

#include "common/status_macros.h"
#include "worker/sampling/sampler.h"

namespace g4 {

absl::StatusOr<std::vector<int32_t>> Generate(Gemma4Model& model, absl::Span<const int32_t> prompt,
                                              const SamplingParams& params,
                                              const LogitsSink& sink, const TokenFn& on_token) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: no tokens");
  std::vector<int32_t> out;
  if (params.max_tokens.has_value() && *params.max_tokens <= 0) return out;
  SequenceSamplingState state(params, prompt);
  std::unique_ptr<SequenceKvCache> seq = model.NewSequence();
  SequenceChunk chunk{seq.get(), prompt};
  const int64_t max_len = model.config().max_position_embeddings;
  while (true) {
    G4_ASSIGN_OR_RETURN(std::vector<float> logits, model.Forward({&chunk, 1}, LogitsFor::kLastToken));
    G4_ASSIGN_OR_RETURN(SampleResult r, Sample(logits, state));
    if (sink) sink(r.token, logits);
    out.push_back(r.token);
    if (on_token && !on_token(r.token)) break;
    if (r.finish_reason != FinishReason::kNone) break;
    if (seq->length() + 1 >= max_len) break;  // the context is full
    chunk = SequenceChunk{seq.get(), absl::MakeConstSpan(&out.back(), 1)};
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> GenerateGreedy(Gemma4Model& model,
                                                    absl::Span<const int32_t> prompt,
                                                    const GreedyOptions& options,
                                                    const LogitsSink& sink) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt: no tokens");
  if (options.max_new_tokens <= 0) return std::vector<int32_t>();
  SamplingParams params;
  params.temperature = 0;
  params.max_tokens = options.max_new_tokens;
  params.stop_token_ids = options.stop_token_ids;
  return Generate(model, prompt, params, sink);
}

}  // namespace g4
