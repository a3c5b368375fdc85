#include "coordinator/http/http_request_parser.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace g4 {
namespace {

// RFC 9110 tchar: the characters of methods and field names.
bool IsTokenChar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

// Control characters other than HTAB (and DEL) may not appear in a field value.
bool HasControlChar(absl::string_view s) {
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

absl::string_view TrimOws(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

const std::string* HttpRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return &v;
  }
  return nullptr;
}

HttpRequestParser::Progress HttpRequestParser::Fail(int status, std::string message) {
  phase_ = Phase::kError;
  error_ = Error{status, std::move(message)};
  return Progress::kError;
}

bool HttpRequestParser::NextLine(size_t max_bytes, int too_long_status,
                                 absl::string_view too_long_message, absl::string_view* line) {
  const size_t lf = buffer_.find('\n', std::max(pos_, line_scan_));
  if (lf == std::string::npos) {
    line_scan_ = buffer_.size();
    if (buffer_.size() - pos_ > max_bytes) Fail(too_long_status, std::string(too_long_message));
    return false;
  }
  if (lf - pos_ > max_bytes) {
    Fail(too_long_status, std::string(too_long_message));
    return false;
  }
  absl::string_view l(buffer_.data() + pos_, lf - pos_);
  if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
  pos_ = lf + 1;
  line_scan_ = pos_;
  if (l.find('\r') != absl::string_view::npos) {
    Fail(400, "bare CR in the request head");
    return false;
  }
  *line = l;
  return true;
}

HttpRequestParser::Progress HttpRequestParser::ParseRequestLine(absl::string_view line) {
  header_bytes_ += line.size() + 2;
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) return Fail(400, "malformed request line");
  if (!IsToken(parts[0])) return Fail(400, "malformed method");
  if (parts[1].size() > limits_.max_target_bytes) {
    return Fail(414, absl::StrCat("the request target exceeds ", limits_.max_target_bytes,
                                  " bytes"));
  }
  if (parts[1].empty() || parts[1][0] != '/') {
    return Fail(400, "the request target must be a path starting with '/'");
  }
  for (char c : parts[1]) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return Fail(400, "control character in the request target");
  }
  const absl::string_view version = parts[2];
  if (version == "HTTP/1.1") {
    request_.minor_version = 1;
  } else if (version == "HTTP/1.0") {
    request_.minor_version = 0;
  } else if (version.size() == 8 && absl::StartsWith(version, "HTTP/") &&
             absl::ascii_isdigit(version[5]) && version[6] == '.' &&
             absl::ascii_isdigit(version[7])) {
    return Fail(505, absl::StrCat(version, " is not supported (HTTP/1.1 and HTTP/1.0 are)"));
  } else {
    return Fail(400, "malformed HTTP version");
  }
  request_.method = std::string(parts[0]);
  request_.target = std::string(parts[1]);
  request_.path = std::string(parts[1].substr(0, parts[1].find('?')));
  phase_ = Phase::kHeaders;
  return Progress::kNeedMore;
}

HttpRequestParser::Progress HttpRequestParser::ParseHeaderLine(absl::string_view line,
                                                               bool trailer) {
  header_bytes_ += line.size() + 2;
  if (header_bytes_ > limits_.max_header_bytes) {
    return Fail(431, absl::StrCat("the request head exceeds ", limits_.max_header_bytes,
                                  " bytes"));
  }
  if (++header_fields_ > limits_.max_header_fields) {
    return Fail(431, absl::StrCat("more than ", limits_.max_header_fields, " header fields"));
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return Fail(400, "obsolete line folding in a header field");
  }
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos) return Fail(400, "header field without ':'");
  const absl::string_view raw_name = line.substr(0, colon);
  if (!raw_name.empty() && (raw_name.back() == ' ' || raw_name.back() == '\t')) {
    return Fail(400, "whitespace before ':' in a header field");
  }
  if (!IsToken(raw_name)) return Fail(400, "malformed header field name");
  const absl::string_view value = TrimOws(line.substr(colon + 1));
  std::string name = absl::AsciiStrToLower(raw_name);
  if (HasControlChar(value)) return Fail(400, absl::StrCat("control character in ", name));
  if (trailer) return Progress::kNeedMore;  // trailers are read and dropped

  if (name == "content-length") {
    if (has_content_length_) return Fail(400, "duplicate Content-Length");
    has_content_length_ = true;
    if (value.empty() || value.size() > 19 ||
        !std::all_of(value.begin(), value.end(),
                     [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
        !absl::SimpleAtoi(value, &remaining_)) {
      return Fail(400, "Content-Length is not a decimal number");
    }
  } else if (name == "transfer-encoding") {
    if (chunked_) return Fail(400, "duplicate Transfer-Encoding");
    if (!absl::EqualsIgnoreCase(value, "chunked")) {
      return Fail(400, "Transfer-Encoding: only \"chunked\" is supported");
    }
    chunked_ = true;
  } else if (name == "host") {
    if (has_host_) return Fail(400, "duplicate Host");
    has_host_ = true;
  } else if (name == "expect") {
    if (!absl::EqualsIgnoreCase(value, "100-continue")) {
      return Fail(417, "Expect: only 100-continue is supported");
    }
    expects_continue_ = true;
  } else if (name == "connection") {
    for (absl::string_view token : absl::StrSplit(value, ',')) {
      token = TrimOws(token);
      if (absl::EqualsIgnoreCase(token, "close")) saw_close_ = true;
      if (absl::EqualsIgnoreCase(token, "keep-alive")) saw_keep_alive_ = true;
    }
  }
  request_.headers.emplace_back(std::move(name), std::string(value));
  return Progress::kNeedMore;
}

HttpRequestParser::Progress HttpRequestParser::EndOfHeaders() {
  if (chunked_ && has_content_length_) {
    return Fail(400, "both Content-Length and Transfer-Encoding");
  }
  if (chunked_ && request_.minor_version == 0) return Fail(400, "Transfer-Encoding in HTTP/1.0");
  if (request_.minor_version == 1 && !has_host_) return Fail(400, "missing Host");
  request_.keep_alive = request_.minor_version == 1 ? !saw_close_ : saw_keep_alive_ && !saw_close_;
  if (has_content_length_) {
    if (remaining_ > limits_.max_body_bytes) {
      return Fail(413, absl::StrCat("body: the request body exceeds ", limits_.max_body_bytes,
                                    " bytes"));
    }
    if (remaining_ == 0) return Finish();
    request_.body.reserve(remaining_);
    phase_ = Phase::kBody;
    return Progress::kHeaders;
  }
  if (chunked_) {
    phase_ = Phase::kChunkSize;
    return Progress::kHeaders;
  }
  return Finish();
}

HttpRequestParser::Progress HttpRequestParser::ParseChunkSize(absl::string_view line) {
  size_t digits = 0;
  while (digits < line.size() && absl::ascii_isxdigit(static_cast<unsigned char>(line[digits]))) {
    ++digits;
  }
  if (digits == 0 || digits > 16) return Fail(400, "malformed chunk size");
  absl::string_view rest = TrimOws(line.substr(digits));
  if (!rest.empty() && (rest.front() != ';' || HasControlChar(rest))) {
    return Fail(400, "malformed chunk extension");
  }
  uint64_t size = 0;
  for (size_t i = 0; i < digits; ++i) {
    const char c = line[i];
    size = size * 16 + static_cast<uint64_t>(absl::ascii_isdigit(static_cast<unsigned char>(c))
                                                 ? c - '0'
                                                 : absl::ascii_tolower(c) - 'a' + 10);
  }
  if (size > limits_.max_body_bytes - request_.body.size()) {
    return Fail(413, absl::StrCat("body: the request body exceeds ", limits_.max_body_bytes,
                                  " bytes"));
  }
  if (size == 0) {
    phase_ = Phase::kTrailers;
  } else {
    remaining_ = size;
    phase_ = Phase::kChunkData;
  }
  return Progress::kNeedMore;
}

HttpRequestParser::Progress HttpRequestParser::Finish() {
  phase_ = Phase::kDone;
  return Progress::kDone;
}

HttpRequestParser::Progress HttpRequestParser::Feed(absl::string_view data) {
  if (phase_ == Phase::kError) return Progress::kError;
  if (phase_ == Phase::kDone) {
    buffer_.append(data.data(), data.size());
    return Progress::kDone;
  }
  buffer_.append(data.data(), data.size());
  while (true) {
    if (pos_ == buffer_.size()) {  // everything parsed: keep the buffer small
      buffer_.clear();
      pos_ = 0;
      line_scan_ = 0;
    }
    absl::string_view line;
    switch (phase_) {
      case Phase::kRequestLine: {
        if (!NextLine(limits_.max_target_bytes + 32, 414,
                      absl::StrCat("the request target exceeds ", limits_.max_target_bytes,
                                   " bytes"),
                      &line)) {
          return phase_ == Phase::kError ? Progress::kError : Progress::kNeedMore;
        }
        if (line.empty() && header_bytes_ == 0 && ++leading_empty_lines_ <= 4) continue;
        if (ParseRequestLine(line) == Progress::kError) return Progress::kError;
        continue;
      }
      case Phase::kHeaders:
      case Phase::kTrailers: {
        const size_t budget =
            limits_.max_header_bytes > header_bytes_ ? limits_.max_header_bytes - header_bytes_ : 0;
        if (!NextLine(budget, 431,
                      absl::StrCat("the request head exceeds ", limits_.max_header_bytes,
                                   " bytes"),
                      &line)) {
          return phase_ == Phase::kError ? Progress::kError : Progress::kNeedMore;
        }
        if (line.empty()) {
          if (phase_ == Phase::kTrailers) return Finish();
          const Progress p = EndOfHeaders();
          if (p != Progress::kNeedMore) return p;
          continue;
        }
        if (ParseHeaderLine(line, phase_ == Phase::kTrailers) == Progress::kError) {
          return Progress::kError;
        }
        continue;
      }
      case Phase::kBody:
      case Phase::kChunkData: {
        const size_t take = static_cast<size_t>(
            std::min<uint64_t>(remaining_, buffer_.size() - pos_));
        if (take == 0) return Progress::kNeedMore;
        request_.body.append(buffer_, pos_, take);
        pos_ += take;
        remaining_ -= take;
        if (remaining_ > 0) continue;
        if (phase_ == Phase::kBody) return Finish();
        phase_ = Phase::kChunkDataEnd;
        continue;
      }
      case Phase::kChunkDataEnd: {
        const size_t avail = buffer_.size() - pos_;
        if (avail == 0) return Progress::kNeedMore;
        if (buffer_[pos_] == '\n') {
          ++pos_;
        } else if (buffer_[pos_] == '\r') {
          if (avail < 2) return Progress::kNeedMore;
          if (buffer_[pos_ + 1] != '\n') return Fail(400, "chunk data not followed by CRLF");
          pos_ += 2;
        } else {
          return Fail(400, "chunk data not followed by CRLF");
        }
        line_scan_ = pos_;
        phase_ = Phase::kChunkSize;
        continue;
      }
      case Phase::kChunkSize: {
        if (!NextLine(1024, 400, "chunk size line longer than 1024 bytes", &line)) {
          return phase_ == Phase::kError ? Progress::kError : Progress::kNeedMore;
        }
        if (ParseChunkSize(line) == Progress::kError) return Progress::kError;
        continue;
      }
      case Phase::kDone:
        return Progress::kDone;
      case Phase::kError:
        return Progress::kError;
    }
  }
}

HttpRequest HttpRequestParser::TakeRequest() {
  HttpRequest out = std::move(request_);
  request_ = HttpRequest();
  buffer_.erase(0, pos_);
  pos_ = 0;
  line_scan_ = 0;
  phase_ = Phase::kRequestLine;
  header_bytes_ = 0;
  header_fields_ = 0;
  leading_empty_lines_ = 0;
  expects_continue_ = false;
  has_content_length_ = false;
  chunked_ = false;
  has_host_ = false;
  saw_close_ = false;
  saw_keep_alive_ = false;
  remaining_ = 0;
  return out;
}

}  // namespace g4
