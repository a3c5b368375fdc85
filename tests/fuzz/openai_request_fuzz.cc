// The OpenAI-compatible HTTP API's request parsing (coordinator/http/openai_request.h) on
// arbitrary bodies, both endpoints; a chat request that parses is then rendered with the real
// Gemma 4 chat template, as the server does.
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "coordinator/http/openai_request.h"
#include "tests/fuzz/gemma4_template.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g4::fuzz::Gemma4Template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  (void)g4::ParseCompletionRequest(body);
  auto chat = g4::ParseChatRequest(body);
  if (chat.ok()) (void)g4::fuzz::Gemma4Template().Render(chat->chat_request);
  return 0;
}
