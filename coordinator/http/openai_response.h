// OpenAI-compatible response bodies built from g4serve.v1.GenerateResponse streams: completion
// and chat.completion objects (non-streaming), SSE chunk events (streaming, ending in
// `data: [DONE]`), usage with prompt_tokens_details.cached_tokens, chat output split into
// reasoning / content / tool_calls by the Gemma 4 output parser, and OpenAI's error body. Shapes:
// docs/api.md.
#ifndef G4SERVE_COORDINATOR_HTTP_OPENAI_RESPONSE_H_
#define G4SERVE_COORDINATOR_HTTP_OPENAI_RESPONSE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/chat_output/output_parser.h"
#include "coordinator/api/text_codec.h"
#include "g4serve/v1/inference.pb.h"
#include "nlohmann/json.hpp"

namespace g4 {

// HTTP status for a canonical code: INVALID_ARGUMENT/FAILED_PRECONDITION/OUT_OF_RANGE 400,
// NOT_FOUND 404, ALREADY_EXISTS 409, RESOURCE_EXHAUSTED 429, CANCELLED 499, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, UNIMPLEMENTED 501, everything else 500.
int HttpStatusFor(absl::StatusCode code);

// {"error": {"message", "type", "param", "code"}}; `param` is the field the message starts with
// ("temperature: ..." → "temperature"), null when none.
nlohmann::ordered_json ErrorBody(const absl::Status& status);
// The field an error message names (the leading "name:" / "name must"), empty when none.
std::string ErrorParam(absl::string_view message);

struct ResponseOptions {
  bool chat = false;
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
  bool include_usage = false;  // streaming: a final usage chunk
  bool logprobs = false;
  OutputStart output_start = OutputStart::kContent;  // chat: where the output starts
  const TextCodec* codec = nullptr;                  // token texts for logprobs; may be null
};

class OpenAiResponder {
 public:
  explicit OpenAiResponder(ResponseOptions options);

  // --- streaming ---
  // The SSE events ("data: {...}\n\n") for one response; the first call also emits the chat
  // role chunk; a final response (finish_reason set) adds the finishing chunk.
  std::vector<std::string> StreamEvents(const g4serve::v1::GenerateResponse& response);
  // After the final response: the usage chunk (when asked) and `data: [DONE]`.
  std::vector<std::string> StreamEnd();
  // A mid-stream error event followed by `data: [DONE]`.
  static std::vector<std::string> StreamError(const absl::Status& status);

  // --- non-streaming ---
  void Accumulate(const g4serve::v1::GenerateResponse& response);
  nlohmann::ordered_json Final();

 private:
  nlohmann::ordered_json Envelope() const;
  nlohmann::ordered_json UsageJson() const;
  nlohmann::ordered_json LogprobsJson(const g4serve::v1::GenerateResponse& response) const;
  std::string FinishReason(g4serve::v1::FinishReason reason, bool tool_calls) const;
  static std::string Event(const nlohmann::ordered_json& json);
  nlohmann::ordered_json ChatDelta(const OutputDelta& delta);

  ResponseOptions options_;
  StreamingOutputParser parser_;
  bool started_ = false;
  int tool_calls_ = 0;
  g4serve::v1::Usage usage_;
  g4serve::v1::FinishReason finish_ = g4serve::v1::FINISH_REASON_UNSPECIFIED;
  // Non-streaming accumulation.
  std::string text_;
  nlohmann::ordered_json logprobs_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_OPENAI_RESPONSE_H_
