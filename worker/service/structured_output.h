// Structured outputs on the replica leader: the grammar compiler built from the checkpoint's
// tokenizer at load time, and one constraint matcher per constrained request.
#ifndef G4SERVE_WORKER_SERVICE_STRUCTURED_OUTPUT_H_
#define G4SERVE_WORKER_SERVICE_STRUCTURED_OUTPUT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/generation_config.h"
#include "common/grammar/compiler.h"
#include "common/grammar/matcher.h"
#include "g4serve/v1/inference.pb.h"
#include "worker/sampling/sampling_params.h"

namespace g4 {

// The compiler for `model_dir`'s tokenizer.json, masks `vocab_size` wide; null (and OK) when the
// checkpoint has no tokenizer.json (constrained requests then fail with FAILED_PRECONDITION).
absl::StatusOr<std::unique_ptr<grammar::GrammarCompiler>> LoadGrammarCompiler(
    const std::string& model_dir, int64_t vocab_size);

// Compiles (or takes from the cache) the request's constraint and returns its matcher, with the
// request's stop tokens as end tokens (the checkpoint's eos ids when it has none, e.g. with
// ignore_eos). The first mask is computed here, on the RPC thread, so the engine's first step
// for this request does not pay for it. INVALID_ARGUMENT for a bad constraint (field named as
// in the proto); FAILED_PRECONDITION when `compiler` is null.
absl::StatusOr<std::shared_ptr<grammar::GrammarMatcher>> NewGrammarMatcher(
    grammar::GrammarCompiler* compiler, const g4serve::v1::StructuredOutput& constraint,
    const SamplingParams& params, const GenerationConfig& generation_config);

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_STRUCTURED_OUTPUT_H_
