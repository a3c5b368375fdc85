// OpenAI structured outputs on /v1/chat/completions: `response_format` ({"type": "text"},
// {"type": "json_object"}, {"type": "json_schema", "json_schema": {"name", "schema", "strict",
// "description"}}) and the forcing `tool_choice` values ("required", {"type": "function",
// "function": {"name"}}), turned into GenerateRequest.structured_output. Schemas are checked
// here, so errors name the OpenAI field ("response_format.json_schema.schema: #/properties/a:
// unsupported keyword \"pattern\"", "tools[1].function.parameters: ..."). docs/api.md,
// docs/structured_outputs.md.
#ifndef G4SERVE_COORDINATOR_HTTP_OPENAI_STRUCTURED_H_
#define G4SERVE_COORDINATOR_HTTP_OPENAI_STRUCTURED_H_

#include "absl/status/status.h"
#include "g4serve/v1/inference.pb.h"
#include "nlohmann/json.hpp"

namespace g4 {

// Reads `response_format`, `tool_choice`, `parallel_tool_calls` and `tools` (already checked
// for shape by the caller) from the chat request `body` and sets out->structured_output when
// they constrain the output. InvalidArgument naming the field otherwise.
absl::Status ParseStructuredOutputs(const nlohmann::ordered_json& body,
                                    g4serve::v1::GenerateRequest* out);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_OPENAI_STRUCTURED_H_
