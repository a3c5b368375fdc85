// A blocking TCP connection to 127.0.0.1, for tests and benchmarks that speak to a server by hand
// (raw HTTP, TLS handshakes, slow clients). Header-only; no test framework.
#ifndef G4SERVE_TESTS_TESTING_LOOPBACK_SOCKET_H_
#define G4SERVE_TESTS_TESTING_LOOPBACK_SOCKET_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>

namespace g4::testing {

// A socket connected to 127.0.0.1:`port`, or -1. With `io_timeout_s` > 0 its reads and writes
// give up after that many seconds (no test hangs on a server that does not answer).
inline int ConnectLoopback(int port, int io_timeout_s = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (io_timeout_s > 0) {
    timeval tv{.tv_sec = io_timeout_s, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_TESTING_LOOPBACK_SOCKET_H_
