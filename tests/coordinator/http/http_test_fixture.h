// The HTTP tests' fixture: the coordinator fixture with its HTTP server, plus raw-socket helpers
// for what an HTTP client library would not send.
#ifndef G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
#define G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/http/http_server.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/coordinator/coordinator_fixture.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "tests/testing/loopback_socket.h"

namespace g4::testing {

class HttpServerTest : public CoordinatorFixture {
 protected:
  // What SetUp gives the HTTP server; override to change limits.
  virtual HttpServerOptions HttpOptions() {
    HttpServerOptions o;
    o.max_body_bytes = 1 << 20;
    return o;
  }

  void SetUp() override {
    StartCoordinator(TestFleetOptions(), TestInferenceOptions(), Codec(), HttpOptions());
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }

  // A new loopback connection to the HTTP server (-1 on failure).
  int Connect() const { return ::g4::testing::ConnectLoopback(http_port_); }

  static bool SendAll(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Everything the server sends until it closes the connection (or `timeout` passes).
  static std::string ReadUntilClosed(int fd, absl::Duration timeout = absl::Seconds(10)) {
    std::string got;
    const absl::Time deadline = absl::Now() + timeout;
    char buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  // Sends `request` on a new connection and returns the whole answer, until the server closes
  // the connection (after an error, or with "Connection: close"). The client keeps its side
  // open: a client that shuts it down is gone.
  std::string RawExchange(const std::string& request) const {
    const int fd = Connect();
    EXPECT_GE(fd, 0);
    if (fd < 0) return "";
    EXPECT_TRUE(SendAll(fd, request));
    std::string got = ReadUntilClosed(fd);
    close(fd);
    return got;
  }
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
