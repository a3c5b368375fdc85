// The OpenAI-compatible HTTP front end of g4-coordinator (cpp-httplib, thread-pooled):
//   POST /v1/completions, POST /v1/chat/completions (JSON or SSE streaming ending in
//   `data: [DONE]`), GET /v1/models, GET /health (200 with at least one READY replica, else 503).
// Requests go through the same GenerationService as the gRPC API (validation, routing, stop
// strings, cancellation). Errors use OpenAI's body {"error": {message, type, param, code}} with
// the status from HttpStatusFor (429 carries `retry-after: 1`). A streaming client that
// disconnects cancels its request (the leader aborts the sequence). See docs/api.md.
#ifndef G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_
#define G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/api/generation.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace g4 {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                          // 0: pick a free port
  size_t max_body_bytes = 8 << 20;       // larger bodies get 413
  int threads = 64;                      // connections served at once
  absl::Duration read_timeout = absl::Seconds(30);
  absl::Duration write_timeout = absl::Seconds(30);
};

class HttpServer {
 public:
  // `generation` must outlive the server.
  HttpServer(HttpServerOptions options, GenerationService* generation);
  ~HttpServer();  // Stop()

  // Binds and starts serving on a background thread; returns the bound port.
  absl::StatusOr<int> Start();
  // Stops accepting and waits for the listener thread. Idempotent.
  void Stop();

 private:
  void HandleGenerate(const httplib::Request& request, httplib::Response& response, bool chat);
  void HandleModels(httplib::Response& response);
  void HandleHealth(httplib::Response& response);
  std::string NewId(bool chat);

  const HttpServerOptions options_;
  GenerationService* const generation_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  std::atomic<uint64_t> next_id_{0};
  const std::string id_prefix_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_
