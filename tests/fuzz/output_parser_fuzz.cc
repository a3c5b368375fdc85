// Gemma 4 output parsing (reasoning channel, tool calls) streamed in random splits. Property:
// the deltas of any split, concatenated, equal the one-shot parse (output_parser.h's invariant),
// for every OutputStart.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "common/chat_output/output_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  // Byte 0: where the output starts; byte 1: the seed of the split points; the rest: the text.
  const uint8_t start_byte = data[0];
  uint32_t split_state = data[1] * 2654435761u + 1;
  const absl::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  g4::OutputParserOptions options;
  options.start = static_cast<g4::OutputStart>(start_byte % 3);
  const g4::ParsedOutput whole = g4::ParseCompleteOutput(text, options);

  g4::StreamingOutputParser parser(options);
  g4::ParsedOutput streamed;
  size_t pos = 0;
  while (pos < text.size()) {
    split_state = split_state * 1103515245u + 12345u;
    const size_t n = 1 + (split_state >> 16) % 8;  // chunks of 1..8 bytes
    g4::AppendDelta(parser.Feed(text.substr(pos, n)), &streamed);
    pos += n;
  }
  g4::AppendDelta(parser.Finish(), &streamed);
  if (!(streamed == whole)) __builtin_trap();
  return 0;
}
