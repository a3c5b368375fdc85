#include "coordinator/api/request_limits.h"

#include <algorithm>
#include <limits>

namespace g4 {

int64_t MaxPromptTextBytes(int64_t max_prompt_tokens, int max_bytes_per_token) {
  if (max_bytes_per_token <= 0 || max_prompt_tokens < 0) return -1;
  if (max_prompt_tokens > std::numeric_limits<int64_t>::max() / max_bytes_per_token) {
    return std::numeric_limits<int64_t>::max();
  }
  return max_prompt_tokens * max_bytes_per_token;
}

int64_t GrpcMaxReceiveBytes(int64_t max_context, int max_bytes_per_token, bool has_tokenizer) {
  const int64_t token_ids = max_context * 5 + 16;  // packed varints + tag and length
  int64_t prompt = token_ids;
  if (has_tokenizer) {
    const int64_t text = MaxPromptTextBytes(max_context, max_bytes_per_token);
    if (text < 0) return kFallbackGrpcReceiveBytes;
    prompt = std::max(prompt, kChatJsonTextFactor * text);
  }
  const int64_t limit = prompt + kGenerateRequestFieldBytes;
  return std::min<int64_t>(limit, std::numeric_limits<int>::max());
}

}  // namespace g4
