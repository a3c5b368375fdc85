// Bounds on what one request may carry, shared by the gRPC and HTTP APIs (both go through
// GenerationService::Prepare), and the gRPC receive limit derived from them. Every limit, with
// the error it gives, is listed in docs/limits.md.
#ifndef G4SERVE_COORDINATOR_API_REQUEST_LIMITS_H_
#define G4SERVE_COORDINATOR_API_REQUEST_LIMITS_H_

#include <cstddef>
#include <cstdint>

namespace g4 {

// Stop strings per request (OpenAI allows 4, vLLM has no limit) and bytes per stop string.
inline constexpr int kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 1024;
// Extra stop token ids per request.
inline constexpr int kMaxStopTokenIds = 64;
// Bytes of the model name and of a client-supplied request id (printable ASCII).
inline constexpr size_t kMaxModelNameBytes = 256;
inline constexpr size_t kMaxRequestIdBytes = 256;
// Bytes of the gRPC caller namespace (metadata "g4-namespace").
inline constexpr size_t kMaxNamespaceBytes = 128;
// Tools per chat request (OpenAI's limit).
inline constexpr int kMaxTools = 128;
// chat_json may be this many times the text bound: JSON escaping (\" \\ \n) at most doubles
// ordinary text.
inline constexpr int64_t kChatJsonTextFactor = 2;
// What the bounded fields of a GenerateRequest can take besides the prompt (stop strings, stop
// token ids, ids, names, sampling), rounded up generously.
inline constexpr int64_t kGenerateRequestFieldBytes = 64 << 10;
// The receive limit when no byte bound per token is known.
inline constexpr int64_t kFallbackGrpcReceiveBytes = 256 << 20;

// The most bytes of prompt text that can fit in `max_prompt_tokens` tokens when one token
// covers at most `max_bytes_per_token` bytes (0: unknown, no bound: returns -1).
int64_t MaxPromptTextBytes(int64_t max_prompt_tokens, int max_bytes_per_token);

// The gRPC server's receive limit for a model with `max_context` tokens: the largest of a
// token-id prompt (5 bytes per varint id), a text prompt (MaxPromptTextBytes) and a chat_json
// (kChatJsonTextFactor times that), plus kGenerateRequestFieldBytes. With no byte bound per token
// (`max_bytes_per_token` 0) but a tokenizer (`has_tokenizer`), kFallbackGrpcReceiveBytes. The
// derivation: docs/limits.md.
int64_t GrpcMaxReceiveBytes(int64_t max_context, int max_bytes_per_token, bool has_tokenizer);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_REQUEST_LIMITS_H_
