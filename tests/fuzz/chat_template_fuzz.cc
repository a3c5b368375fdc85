// A hostile client's chat request rendered by the real Gemma 4 chat template: arbitrary JSON
// (messages, content parts, tool calls, tools) through ChatTemplate::Render. Errors, never a
// crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "tests/fuzz/gemma4_template.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g4::fuzz::Gemma4Template();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::ordered_json request =
      nlohmann::ordered_json::parse(data, data + size, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (request.is_discarded() || !request.is_object()) return 0;
  (void)g4::fuzz::Gemma4Template().Render(request);
  return 0;
}
