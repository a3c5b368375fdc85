// Conversions between the public protobuf messages (g4serve/v1/inference.proto) and the
// sampler's types. The coordinator uses ToSamplingRequest to validate a request before routing
// it; the worker uses it again (then ResolveSamplingParams with the checkpoint's defaults) before
// submitting to the engine, so both reject the same requests with the same messages.
#ifndef G4SERVE_WORKER_SAMPLING_PROTO_CONVERSION_H_
#define G4SERVE_WORKER_SAMPLING_PROTO_CONVERSION_H_

#include "absl/status/statusor.h"
#include "g4serve/v1/inference.pb.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

// Copies the request's fields (proto3 `optional` → std::optional; unset stays unset) and checks
// everything that does not depend on the checkpoint: the ranges of Validate() with the fields
// left unset filled with neutral defaults, negative stop token ids, max_tokens < 1, logprobs
// outside [0, 20], empty stop strings. InvalidArgument names the field ("temperature must be
// >= 0, got -1"). Vocabulary bounds and generation_config defaults are checked later by
// ResolveSamplingParams on the worker.
absl::StatusOr<SamplingRequest> ToSamplingRequest(const g4serve::v1::SamplingParameters& sampling,
                                                  const g4serve::v1::StoppingCriteria& stopping);

// Fills `out` (cleared first) from a sampled token: token_id, and when logprobs were requested
// the chosen token's logprob and the top alternatives (token_id, logprob; the text of each
// alternative is left empty for the coordinator, which owns the tokenizer).
void ToProto(const SampleResult& result, g4serve::v1::TokenOutput* out);

}  // namespace g4

#endif  // G4SERVE_WORKER_SAMPLING_PROTO_CONVERSION_H_
