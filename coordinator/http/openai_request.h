// Parsing and validation of OpenAI-compatible request bodies (/v1/completions,
// /v1/chat/completions) into the transport-neutral g4serve.v1.GenerateRequest. Every error is
// INVALID_ARGUMENT whose message starts with the offending field ("temperature: expected a
// number"); unknown top-level fields are rejected the way OpenAI does ("Unrecognized request
// argument supplied: X"). Supported fields and extensions: docs/api.md.
#ifndef G4SERVE_COORDINATOR_HTTP_OPENAI_REQUEST_H_
#define G4SERVE_COORDINATOR_HTTP_OPENAI_REQUEST_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "g4serve/v1/inference.pb.h"
#include "nlohmann/json.hpp"

namespace g4 {

// Completions default to 16 new tokens when max_tokens is absent (OpenAI's and vLLM's legacy
// default); chat fills the context.
inline constexpr int kDefaultCompletionMaxTokens = 16;

struct OpenAiRequest {
  bool chat = false;
  std::string model;  // as requested (echoed in responses; empty: the served model)
  // model, sampling and stopping set; the prompt is set for completions (text or token_ids) and
  // left unset for chat (the server renders `chat` with the chat template).
  g4serve::v1::GenerateRequest generate;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Completions: logprobs = N (alternatives per token). Chat: logprobs = true/false and
  // top_logprobs = N.
  bool logprobs = false;
  int top_logprobs = 0;
  // Chat only: {messages, tools?, enable_thinking?, add_generation_prompt: true} for
  // ChatTemplate::Render (tools dropped when tool_choice is "none").
  nlohmann::ordered_json chat_request;
};

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(absl::string_view body);
absl::StatusOr<OpenAiRequest> ParseChatRequest(absl::string_view body);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_OPENAI_REQUEST_H_
