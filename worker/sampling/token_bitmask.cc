#include "worker/sampling/token_bitmask.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace g4 {

absl::Status ApplyTokenBitmask(absl::Span<const uint32_t> bitmask, absl::Span<float> logits) {
  const int64_t vocab = static_cast<int64_t>(logits.size());
  if (static_cast<int64_t>(bitmask.size()) != BitmaskWords(vocab)) {
    return absl::InvalidArgumentError(absl::StrCat("token bitmask: ", bitmask.size(),
                                                   " words for a vocabulary of ", vocab,
                                                   " tokens (want ", BitmaskWords(vocab), ")"));
  }
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t w = 0; w < static_cast<int64_t>(bitmask.size()); ++w) {
    const uint32_t word = bitmask[w];
    if (word == 0xFFFFFFFFu) continue;
    const int64_t base = w * 32;
    const int64_t n = std::min<int64_t>(32, vocab - base);
    for (int64_t b = 0; b < n; ++b) {
      if (((word >> b) & 1) == 0) logits[base + b] = kNegInf;
    }
  }
  return absl::OkStatus();
}

}  // namespace g4
