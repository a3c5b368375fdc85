// The OpenAI-compatible HTTP API's request parsing (coordinator/http/openai_request.h) on
// arbitrary bodies, both endpoints; a chat request that parses is then rendered with the real
// Gemma 4 chat template, as the server does.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "common/chat_template/chat_template.h"
#include "coordinator/http/openai_request.h"

namespace {

const g4::ChatTemplate& Template() {
  static const g4::ChatTemplate* tmpl = [] {
    auto t = g4::ChatTemplate::LoadFile("tests/data/chat_templates/gemma-4.jinja");
    if (!t.ok()) {
      std::fprintf(stderr, "openai_request_fuzz: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    return new g4::ChatTemplate(*std::move(t));
  }();
  return *tmpl;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body(reinterpret_cast<const char*>(data), size);
  (void)g4::ParseCompletionRequest(body);
  auto chat = g4::ParseChatRequest(body);
  if (chat.ok()) (void)Template().Render(chat->chat_request);
  return 0;
}
