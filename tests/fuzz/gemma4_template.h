// The real Gemma 4 chat template (tests/data), loaded once for the fuzz targets that render
// requests with it.
#ifndef G4SERVE_TESTS_FUZZ_GEMMA4_TEMPLATE_H_
#define G4SERVE_TESTS_FUZZ_GEMMA4_TEMPLATE_H_

#include <cstdio>
#include <cstdlib>

#include "common/chat_template/chat_template.h"

namespace g4::fuzz {

inline const ChatTemplate& Gemma4Template() {
  static const ChatTemplate* tmpl = [] {
    auto t = ChatTemplate::LoadFile("tests/data/chat_templates/gemma-4.jinja");
    if (!t.ok()) {
      std::fprintf(stderr, "fuzz target: %s (run from the repository root)\n",
                   t.status().ToString().c_str());
      std::abort();
    }
    return new ChatTemplate(*std::move(t));
  }();
  return *tmpl;
}

}  // namespace g4::fuzz

#endif  // G4SERVE_TESTS_FUZZ_GEMMA4_TEMPLATE_H_
