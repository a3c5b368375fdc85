#include "coordinator/http/http_exchange.h"

#include "absl/strings/str_cat.h"

namespace g4 {

absl::string_view HttpReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

HttpExchange::HttpExchange(std::shared_ptr<HttpMailbox> mailbox, uint64_t connection_id,
                           int minor_version, bool keep_alive)
    : mailbox_(std::move(mailbox)),
      connection_id_(connection_id),
      minor_version_(minor_version),
      keep_alive_(keep_alive) {}

std::string HttpExchange::Head(int status, absl::string_view content_type,
                               const HttpHeaders& headers,
                               const std::string* content_length) const {
  std::string head = absl::StrCat("HTTP/1.", minor_version_, " ", status, " ",
                                  HttpReasonPhrase(status), "\r\nContent-Type: ", content_type,
                                  "\r\n");
  for (const auto& [name, value] : headers) absl::StrAppend(&head, name, ": ", value, "\r\n");
  if (content_length != nullptr) {
    absl::StrAppend(&head, "Content-Length: ", *content_length, "\r\n");
  } else if (minor_version_ == 1) {
    absl::StrAppend(&head, "Transfer-Encoding: chunked\r\n");
  }
  const bool keep_alive = keep_alive_ && (content_length != nullptr || minor_version_ == 1);
  if (!keep_alive) {
    absl::StrAppend(&head, "Connection: close\r\n");
  } else if (minor_version_ == 0) {
    absl::StrAppend(&head, "Connection: keep-alive\r\n");
  }
  head += "\r\n";
  return head;
}

void HttpExchange::Respond(int status, absl::string_view content_type, absl::string_view body,
                           const HttpHeaders& headers) {
  if (client_gone()) return;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != Stage::kNew) return;
    stage_ = Stage::kDone;
    const std::string length = absl::StrCat(body.size());
    absl::StrAppend(&pending_, Head(status, content_type, headers, &length), body);
  }
  Post();
}

void HttpExchange::StartStream(int status, absl::string_view content_type,
                               const HttpHeaders& headers) {
  if (client_gone()) return;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != Stage::kNew) return;
    stage_ = Stage::kStreaming;
    close_after_ = minor_version_ == 0;
    absl::StrAppend(&pending_, Head(status, content_type, headers, nullptr));
  }
  Post();
}

bool HttpExchange::Write(absl::string_view data) {
  if (client_gone()) return false;
  if (data.empty()) return true;  // an empty chunk would end a chunked stream
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != Stage::kStreaming) return false;
    if (minor_version_ == 1) {
      absl::StrAppend(&pending_, absl::Hex(data.size()), "\r\n", data, "\r\n");
    } else {
      absl::StrAppend(&pending_, data);
    }
  }
  Post();
  return true;
}

void HttpExchange::Finish() {
  if (client_gone()) return;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ != Stage::kStreaming) return;
    stage_ = Stage::kDone;
    if (minor_version_ == 1) pending_ += "0\r\n\r\n";
  }
  Post();
}

HttpExchange::Output HttpExchange::Drain() {
  absl::MutexLock lock(&mu_);
  Output out;
  out.bytes.swap(pending_);
  out.complete = stage_ == Stage::kDone;
  out.keep_alive = keep_alive_ && !close_after_;
  return out;
}

}  // namespace g4
