// Jinja: parse arbitrary template source, and render what parses with a chat-like context.
// jinja_features.jsonl and the Gemma 4 templates seed it (tools/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/jinja/interpreter.h"
#include "common/jinja/value.h"
#include "nlohmann/json.hpp"

namespace {

const g4::jinja::Value& Context() {
  static const g4::jinja::Value* context =
      new g4::jinja::Value(g4::jinja::Value::FromJson(nlohmann::ordered_json::parse(R"({
        "messages": [
          {"role": "system", "content": "Be brief."},
          {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
          {"role": "assistant", "content": "",
           "tool_calls": [{"id": "c1", "type": "function",
                           "function": {"name": "get", "arguments": {"city": "Paris", "n": 3}}}]},
          {"role": "tool", "tool_call_id": "c1", "content": "{\"t\": 21.5}"}],
        "tools": [{"type": "function", "function": {"name": "get", "description": "d",
                   "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                  "required": ["city"]}}}],
        "add_generation_prompt": true, "enable_thinking": false, "bos_token": "<bos>",
        "items": [3, 1, 2], "n": 7, "x": 1.5, "s": "héllo", "none": null
      })")));
  return *context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = g4::jinja::Template::Parse(source);
  if (!tmpl.ok()) return 0;
  (void)tmpl->Render(Context());
  return 0;
}
