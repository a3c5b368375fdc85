// Renders OpenAI-style chat requests into a Gemma 4 prompt by running the checkpoint's own
// chat_template.jinja with the Jinja-subset interpreter (common/jinja), byte-identical to jinja2
// as Hugging Face transformers configures it. See docs/chat_template.md.
#ifndef G4SERVE_COMMON_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
#define G4SERVE_COMMON_CHAT_TEMPLATE_CHAT_TEMPLATE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/jinja/interpreter.h"
#include "nlohmann/json.hpp"

namespace g4 {

class ChatTemplate {
 public:
  // Parses the template text (InvalidArgument naming the line on syntax errors).
  static absl::StatusOr<ChatTemplate> Load(std::string_view template_text,
                                           std::string bos_token = "<bos>");
  // Reads and parses a chat_template.jinja file (NotFound when unreadable).
  static absl::StatusOr<ChatTemplate> LoadFile(const std::string& path,
                                               std::string bos_token = "<bos>");

  // Renders `request` = {messages, tools?, enable_thinking?, add_generation_prompt? (default
  // true)}; other top-level keys are ignored. Request errors are InvalidArgument naming the field
  // ("messages[2].content: ..."); template errors are InvalidArgument naming the template line.
  // A request (or a JSON string inside it: tool-call arguments, tool results) nested deeper
  // than kMaxJsonDepth (common/json_depth.h) is InvalidArgument before anything recurses.
  // The ordered_json overload keeps the request's key order (what jinja2 sees from json.loads);
  // nlohmann::json sorts keys, which only matters for templates that print whole dicts.
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& request) const;
  absl::StatusOr<std::string> Render(const nlohmann::json& request) const;

  // The template context for `request`: OpenAI messages mapped to what Gemma 4 templates read
  // (tool results folded into `tool_responses`, JSON-string tool-call arguments parsed, content
  // parts normalized, `reasoning` → `reasoning_content`), plus bos_token and
  // add_generation_prompt. Exposed for tests and debugging.
  absl::StatusOr<nlohmann::ordered_json> BuildContext(const nlohmann::ordered_json& request) const;

 private:
  jinja::Template template_;
  std::string bos_token_;
};

}  // namespace g4

#endif  // G4SERVE_COMMON_CHAT_TEMPLATE_CHAT_TEMPLATE_H_
