// Incremental parser for text/event-stream bodies (the OpenAI streaming format): feeds raw
// bytes as they arrive, returns the `data:` payload of each complete event.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_SSE_PARSER_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_SSE_PARSER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace g4::load {

class SseParser {
 public:
  // Appends bytes; returns the data of every event completed by them (an event ends at a blank
  // line; its data lines are joined with '\n'). Comments (":...") and other fields are ignored.
  // Accepts \n, \r\n line endings.
  std::vector<std::string> Feed(absl::string_view bytes);

 private:
  std::string pending_;     // bytes after the last complete line
  std::string data_;        // data of the event being read
  bool has_data_ = false;
};

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_SSE_PARSER_H_
