// The coordinator's HTTP/1.1 request parser (coordinator/http/http_request_parser.h) on
// arbitrary bytes, fed in pieces whose sizes the input chooses (a request split anywhere must
// parse the same), with small limits so the limit paths are reached. Checks what the server
// relies on: no body over its limit, no header count over its limit, errors only with the
// status codes the parser documents.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "coordinator/http/http_request_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte: the size of each piece fed (1..256).
  const size_t piece = static_cast<size_t>(data[0]) + 1;
  const absl::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  g4::HttpLimits limits;
  limits.max_header_bytes = 1024;
  limits.max_header_fields = 16;
  limits.max_target_bytes = 256;
  limits.max_body_bytes = 4096;
  g4::HttpRequestParser parser(limits);
  using Progress = g4::HttpRequestParser::Progress;
  for (size_t offset = 0; offset <= bytes.size(); offset += piece) {
    Progress p = parser.Feed(bytes.substr(offset, piece));
    while (p == Progress::kHeaders || p == Progress::kDone) {
      if (p == Progress::kDone) {
        const g4::HttpRequest request = parser.TakeRequest();
        if (request.body.size() > limits.max_body_bytes) __builtin_trap();
        if (request.headers.size() > static_cast<size_t>(limits.max_header_fields)) {
          __builtin_trap();
        }
        if (request.target.size() > limits.max_target_bytes) __builtin_trap();
      }
      p = parser.Feed("");
    }
    if (p == Progress::kError) {
      const int status = parser.error().status;
      if (status != 400 && status != 413 && status != 414 && status != 417 && status != 431 &&
          status != 505) {
        __builtin_trap();
      }
      if (parser.error().message.empty()) __builtin_trap();
      return 0;
    }
  }
  return 0;
}
