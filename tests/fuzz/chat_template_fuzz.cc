// A hostile client's chat request rendered by the real Gemma 4 chat template: arbitrary JSON
// (messages, content parts, tool calls, tools) through ChatTemplate::Render. Errors, never a
// crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/chat_template/chat_template.h"
#include "nlohmann/json.hpp"

namespace {

const g4::ChatTemplate& Template() {
  static const g4::ChatTemplate* tmpl = [] {
    auto t = g4::ChatTemplate::LoadFile("tests/data/chat_templates/gemma-4.jinja");
    if (!t.ok()) {
      std::fprintf(stderr, "chat_template_fuzz: %s\n", t.status().ToString().c_str());
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
  nlohmann::ordered_json request = nlohmann::ordered_json::parse(
      data, data + size, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) return 0;
  (void)Template().Render(request);
  return 0;
}
