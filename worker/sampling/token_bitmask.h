// The mask step of the sampling path for constrained (structured-output) sequences: a packed
// bitmask over the vocabulary, uint32 words, bit (t % 32) of word t / 32 set when token t is
// allowed (the xgrammar convention). Applying it sets every disallowed logit to -infinity before
// penalties, temperature and the filters, so every sampler setting works unchanged; on a GPU the
// same bitmask is applied to the device logits by a kernel. docs/structured_outputs.md.
#ifndef G4SERVE_WORKER_SAMPLING_TOKEN_BITMASK_H_
#define G4SERVE_WORKER_SAMPLING_TOKEN_BITMASK_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace g4 {

// Words of a bitmask over `vocab_size` tokens.
inline int64_t BitmaskWords(int64_t vocab_size) { return (vocab_size + 31) / 32; }

// Sets logits[t] = -inf for every token t whose bit is clear. InvalidArgument when the bitmask
// does not have BitmaskWords(logits.size()) words.
absl::Status ApplyTokenBitmask(absl::Span<const uint32_t> bitmask, absl::Span<float> logits);

}  // namespace g4

#endif  // G4SERVE_WORKER_SAMPLING_TOKEN_BITMASK_H_
