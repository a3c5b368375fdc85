// Helpers for the metrics tests: a tiny HTTP/1.0 GET client over a raw socket, a free loopback
// port, and running a command with its output captured.
#ifndef G4SERVE_TESTS_COMMON_METRICS_TEST_UTIL_H_
#define G4SERVE_TESTS_COMMON_METRICS_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/testing/loopback_socket.h"

namespace g4::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:port/path (HTTP/1.0, the server closes the connection), 5 s timeouts.
// `headers`: extra header lines, each ending in "\r\n".
inline absl::StatusOr<HttpResponse> HttpGet(int port, const std::string& path,
                                            const std::string& headers = "") {
  const int fd = ::g4::testing::ConnectLoopback(port, /*io_timeout_s=*/5);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("connect 127.0.0.1:", port));
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port, "\r\n", headers, "\r\n");
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send");
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) raw.append(buf, n);
  close(fd);
  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos || raw.size() < 12) {
    return absl::UnavailableError(absl::StrCat("malformed HTTP response: ", raw.substr(0, 200)));
  }
  HttpResponse r;
  if (!absl::SimpleAtoi(raw.substr(9, 3), &r.status)) {
    return absl::UnavailableError(absl::StrCat("bad status line: ", raw.substr(0, 40)));
  }
  r.body = raw.substr(header_end + 4);
  return r;
}

// A loopback TCP port that was free a moment ago (bind port 0, read it back, close).
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// The first of `candidates` that is an executable file; empty when none.
inline std::string FindExecutable(std::initializer_list<const char*> candidates) {
  for (const char* c : candidates) {
    if (access(c, X_OK) == 0) return c;
  }
  return "";
}

// Prometheus' instant query (/api/v1/query) result on `port`: the first sample's value as a
// string, or "" (no sample yet, or Prometheus not up yet).
inline std::string QueryFirstValue(int port, const std::string& promql) {
  std::string encoded;
  for (unsigned char c : promql) {
    if (isalnum(c) || c == '_' || c == ':' || c == '.' || c == '-') {
      encoded += static_cast<char>(c);
    } else {
      encoded += absl::StrCat("%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  absl::StatusOr<HttpResponse> r = HttpGet(port, absl::StrCat("/api/v1/query?query=", encoded));
  if (!r.ok() || r->status != 200) return "";
  const nlohmann::json j = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || j.value("status", "") != "success") return "";
  const auto& result = j["data"]["result"];
  if (!result.is_array() || result.empty()) return "";
  return result[0]["value"][1].get<std::string>();
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COMMON_METRICS_TEST_UTIL_H_
