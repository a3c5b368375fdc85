#include "worker/sampling/proto_conversion.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "common/status_macros.h"

namespace g4 {

absl::StatusOr<SamplingRequest> ToSamplingRequest(const g4serve::v1::SamplingParameters& sampling,
                                                  const g4serve::v1::StoppingCriteria& stopping) {
  SamplingRequest r;
  if (sampling.has_temperature()) r.temperature = sampling.temperature();
  if (sampling.has_top_k()) r.top_k = sampling.top_k();
  if (sampling.has_top_p()) r.top_p = sampling.top_p();
  if (sampling.has_min_p()) r.min_p = sampling.min_p();
  if (sampling.has_repetition_penalty()) r.repetition_penalty = sampling.repetition_penalty();
  if (sampling.has_presence_penalty()) r.presence_penalty = sampling.presence_penalty();
  if (sampling.has_frequency_penalty()) r.frequency_penalty = sampling.frequency_penalty();
  if (sampling.has_seed()) r.seed = sampling.seed();
  if (sampling.has_logprobs()) r.logprobs = sampling.logprobs();
  if (stopping.has_max_tokens()) r.max_tokens = stopping.max_tokens();
  r.stop.assign(stopping.stop().begin(), stopping.stop().end());
  r.stop_token_ids.assign(stopping.stop_token_ids().begin(), stopping.stop_token_ids().end());
  r.ignore_eos = stopping.ignore_eos();

  // Checkpoint-independent validation: neutral defaults (an empty generation config) and a
  // vocabulary so large that only negative token ids fail.
  GenerationConfig neutral;
  neutral.eos_token_ids.clear();
  G4_RETURN_IF_ERROR(
      Validate(ApplyDefaults(r, neutral), std::numeric_limits<int32_t>::max() + int64_t{1}));
  return r;
}

void ToProto(const SampleResult& result, g4serve::v1::TokenOutput* out) {
  out->Clear();
  out->set_token_id(result.token);
  if (result.logprob.has_value()) out->set_logprob(*result.logprob);
  for (const TokenLogprob& alt : result.top_logprobs) {
    g4serve::v1::TokenLogprob* p = out->add_top_logprobs();
    p->set_token_id(alt.token);
    p->set_logprob(alt.logprob);
  }
}

}  // namespace g4
