// The coordinator's HTTP/1.1 server: one epoll event loop thread owns every connection, reads
// and parses requests with the strict HttpRequestParser, and writes responses without blocking.
// No thread belongs to a connection, so idle and slow clients cost a file descriptor and a few
// KiB each, never a thread:
//
// * Absolute deadlines: a request's head must be complete `header_timeout` after its first byte
//   (after accept for a new connection), its body `body_timeout` after the head; they do not
//   restart when a byte arrives. A keep-alive connection may wait `idle_timeout` for its next
//   request. A response that makes no write progress for `write_timeout` closes the connection.
//   Expiry closes the connection (a client that sent a partial request gets nothing: a slow
//   client is not answered).
// * A cap on open connections: at the cap, a new connection first sheds the longest-idle
//   connection (no request in progress); when none is idle it is answered 503 and closed at once.
// * Strict framing: see http_request_parser.h (413 however the body arrives; duplicate or
//   contradictory Content-Length / Transfer-Encoding: 400).
// * Optional TLS (`tls`, docs/security.md): each connection gets a non-blocking TLS server
//   (tls_connection.h) whose handshake the loop drives from readiness events, within the head
//   deadline that runs from accept; the plaintext path is unchanged when `tls` is null. A
//   plaintext HTTP request on a TLS port is answered 400 in plaintext and closed; other failed
//   handshakes are closed and logged, rate-limited (tls_context.h). Over the connection cap, a
//   TLS connection is closed without an answer (a handshake just to say 503 would spend the CPU
//   the cap protects).
// * The port is bound without SO_REUSEPORT: a port in use fails Start.
//
// Requests are handed to `handler` ON THE LOOP THREAD with an HttpExchange for the answer; the
// handler must not block (answer at once, or hand the exchange to another thread). While a
// request is being answered the loop does not read that connection's next request, but it does
// notice when the client closes its side (EPOLLRDHUP), and then closes the connection and marks
// the exchange gone: this is how a disconnect cancels a generation, streaming or not. The design
// and the alternatives weighed are in docs/coordinator.md ("HTTP server").
#ifndef G4SERVE_COORDINATOR_HTTP_EVENT_HTTP_SERVER_H_
#define G4SERVE_COORDINATOR_HTTP_EVENT_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "coordinator/http/http_exchange.h"
#include "coordinator/http/http_request_parser.h"
#include "coordinator/http/tls_context.h"

namespace g4 {

struct EventHttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: pick a free port
  HttpLimits limits;
  // Open connections at most. Start lowers it to what the process's file descriptor limit allows
  // (after raising the soft limit to the hard one), keeping 256 descriptors for everything else.
  int max_connections = 4096;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(60);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration write_timeout = absl::Seconds(30);
  // After a response that closes the connection, input is read and dropped for up to this long
  // before closing, so that the client sees the response instead of a reset (nginx's
  // "lingering close").
  absl::Duration linger_timeout = absl::Seconds(2);
  // TLS on this port (not owned; must outlive the server); null: plaintext.
  HttpTlsContext* tls = nullptr;
};

// Called on the loop thread for each request; must not block.
using HttpHandler = std::function<void(HttpRequest request, std::shared_ptr<HttpExchange>)>;
// The JSON body of an error the server answers by itself (a malformed request: 400/413/414/431/
// 417/505; the connection cap: 503).
using HttpErrorBody = std::function<std::string(int status, absl::string_view message)>;

class EventHttpServer {
 public:
  EventHttpServer(EventHttpServerOptions options, HttpHandler handler, HttpErrorBody error_body);
  ~EventHttpServer();  // Stop()

  // Binds, listens and starts the loop thread; returns the bound port. UNAVAILABLE naming the
  // address when it cannot listen (e.g. the port is in use).
  absl::StatusOr<int> Start();
  // Closes the listener and every connection (their exchanges are marked gone) and joins the
  // loop thread. Idempotent.
  void Stop();

  // The connection cap in force (after Start).
  int max_connections() const { return max_connections_; }
  // Connections open now (any thread; for tests and /health).
  int open_connections() const { return open_connections_.load(std::memory_order_relaxed); }

 private:
  class Mailbox;
  struct Connection;

  void Loop();
  void AcceptAll();
  bool ShedIdle();
  void RejectOverCap(int fd);
  void OnEvent(uint64_t id, uint32_t events);
  void OnReadable(Connection& c);
  void DriveHandshake(Connection& c);
  void HandshakeFailed(Connection& c, const std::string& why);
  void Parse(Connection& c, absl::string_view data);
  void Dispatch(Connection& c);
  void FailRequest(Connection& c, int status, absl::string_view message);
  void ServiceExchange(Connection& c);
  bool Flush(Connection& c);
  void AfterResponse(Connection& c);
  void StartLinger(Connection& c);
  void Close(uint64_t id);
  void SetDeadline(Connection& c, absl::Time deadline);
  void UpdateInterest(Connection& c);
  void ExpireDeadlines(absl::Time now);
  int NextTimeoutMs(absl::Time now) const;

  EventHttpServerOptions options_;
  const HttpHandler handler_;
  const HttpErrorBody error_body_;
  int max_connections_ = 0;

  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::shared_ptr<Mailbox> mailbox_;
  std::thread loop_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_connections_{0};

  // Loop thread only.
  absl::flat_hash_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::set<std::pair<absl::Time, uint64_t>> deadlines_;
  std::vector<uint64_t> reparse_;  // connections with a pipelined request buffered
  uint64_t next_id_ = 2;  // 0: the listener, 1: the wake-up eventfd
  absl::Time accept_paused_until_ = absl::InfinitePast();
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_EVENT_HTTP_SERVER_H_
