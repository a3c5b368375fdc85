// A strict, incremental HTTP/1.1 request parser for the coordinator's own event-driven server
// (coordinator/http/event_server.h). It takes bytes as they arrive and never holds more than the
// limits allow: the request line and headers together (32 KiB), the number of header fields
// (100), the request target (8 KiB) and the body (8 MiB by default), whether the body comes with
// Content-Length or chunked. Anything a proxy could read differently is refused with 400:
// duplicate or non-numeric Content-Length, Content-Length together with Transfer-Encoding, a
// transfer coding other than exactly "chunked", a repeated Transfer-Encoding, whitespace before
// a header's colon, obsolete line folding, control characters, a missing or repeated Host in
// HTTP/1.1, a bare CR. Limits and errors: docs/limits.md.
#ifndef G4SERVE_COORDINATOR_HTTP_HTTP_REQUEST_PARSER_H_
#define G4SERVE_COORDINATOR_HTTP_HTTP_REQUEST_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace g4 {

struct HttpLimits {
  size_t max_header_bytes = 32 << 10;  // request line + header fields (+ chunked trailers): 431
  int max_header_fields = 100;         // 431
  size_t max_target_bytes = 8 << 10;   // the request target: 414
  size_t max_body_bytes = 8 << 20;     // Content-Length or the sum of the chunks: 413
};

struct HttpRequest {
  std::string method;  // as sent (case-sensitive, e.g. "POST")
  std::string target;  // as sent, e.g. "/v1/models?x=1"
  std::string path;    // target up to '?'
  int minor_version = 1;  // HTTP/1.<minor_version>, 0 or 1
  // Field names lowercased, values with surrounding whitespace removed, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // de-chunked
  bool keep_alive = true;  // HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive

  // The first value of `name` (lowercase), or null.
  const std::string* Header(absl::string_view name) const;
};

class HttpRequestParser {
 public:
  enum class Progress {
    kNeedMore,  // feed more bytes
    kHeaders,   // headers complete and a body follows (time for 100 Continue); Feed("") goes on
    kDone,      // a whole request: TakeRequest()
    kError,     // error(): answer it and close the connection
  };
  struct Error {
    int status = 400;  // 400, 413, 414, 417 (an Expect other than 100-continue), 431 or 505
    std::string message;
  };

  explicit HttpRequestParser(HttpLimits limits) : limits_(limits) {}

  // Appends `data` and parses as far as it can. After kDone, TakeRequest() and call Feed again
  // (with new bytes or none) to parse a pipelined request that may already be buffered.
  Progress Feed(absl::string_view data);

  HttpRequest TakeRequest();
  const Error& error() const { return error_; }
  // True between the first byte of a request and its end (for the server's deadlines).
  bool in_request() const { return phase_ != Phase::kRequestLine || !buffer_.empty(); }
  // True once the headers of the current request are complete (the body deadline applies).
  bool in_body() const { return phase_ == Phase::kBody || phase_ == Phase::kChunkSize ||
                                phase_ == Phase::kChunkData || phase_ == Phase::kChunkDataEnd ||
                                phase_ == Phase::kTrailers; }
  // The request (so far) asked for "Expect: 100-continue".
  bool expects_continue() const { return expects_continue_; }
  // Bytes buffered but not yet parsed (pipelined input).
  size_t buffered() const { return buffer_.size() - pos_; }

 private:
  enum class Phase {
    kRequestLine,
    kHeaders,
    kBody,          // Content-Length
    kChunkSize,
    kChunkData,
    kChunkDataEnd,  // the CRLF after a chunk's data
    kTrailers,
    kDone,
    kError,
  };

  Progress Fail(int status, std::string message);
  // The next line (without its CRLF / LF) when a whole one is buffered; `max_bytes` bounds it.
  // Returns false (and may Fail) when none is complete yet.
  bool NextLine(size_t max_bytes, int too_long_status, absl::string_view too_long_message,
                absl::string_view* line);
  Progress ParseRequestLine(absl::string_view line);
  Progress ParseHeaderLine(absl::string_view line, bool trailer);
  Progress EndOfHeaders();
  Progress ParseChunkSize(absl::string_view line);
  Progress Finish();

  const HttpLimits limits_;
  std::string buffer_;
  size_t pos_ = 0;          // parsed up to here
  size_t line_scan_ = 0;    // where the search for the current line's LF resumes
  Phase phase_ = Phase::kRequestLine;
  Error error_;
  HttpRequest request_;
  size_t header_bytes_ = 0;  // request line + header/trailer lines so far
  int header_fields_ = 0;
  int leading_empty_lines_ = 0;
  bool expects_continue_ = false;
  bool has_content_length_ = false;
  bool chunked_ = false;
  bool has_host_ = false;
  bool saw_close_ = false;       // Connection: close
  bool saw_keep_alive_ = false;  // Connection: keep-alive
  uint64_t remaining_ = 0;  // body or chunk bytes still to read
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_HTTP_REQUEST_PARSER_H_
