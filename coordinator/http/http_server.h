// The OpenAI-compatible HTTP front end of g4-coordinator:
//   POST /v1/completions, POST /v1/chat/completions (JSON or SSE streaming ending in
//   `data: [DONE]`), GET /v1/models, GET /health (200 with at least one READY replica, else 503).
// Connections are served by the event-driven EventHttpServer (coordinator/http/
// event_http_server.h: absolute header/body deadlines, a connection cap, no thread per
// connection). /v1/models, /health and errors are answered on its loop thread; each generation
// request gets a thread of its own for parsing, tokenization and the (blocking) relay from the
// worker, which hands the response (or the SSE events, one by one) to the loop. Requests go
// through the same GenerationService as the gRPC API (validation, routing, stop strings,
// cancellation) under the caller "http" (with API keys: the key's identity, coordinator/auth/
// api_keys.h) with unguessable server-assigned ids. With API keys every route needs
// `Authorization: Bearer <key>` (401 otherwise) except /health unless protect_health. Errors use OpenAI's
// body {"error": {message, type, param, code}} with the status from HttpStatusFor (429 carries
// `retry-after: 1`). A client that disconnects, streaming or not, cancels its request (the leader
// aborts the sequence). See docs/api.md and docs/limits.md.
#ifndef G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_
#define G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/api/generation.h"
#include "coordinator/auth/api_keys.h"
#include "coordinator/http/event_http_server.h"

namespace g4 {

// The caller (GenerationService's namespace for request ids) of every HTTP request.
inline constexpr char kHttpCaller[] = "http";

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;                     // 0: pick a free port
  size_t max_body_bytes = 8 << 20;  // larger bodies get 413, however they arrive
  // Connection cap and deadlines: see EventHttpServerOptions.
  int max_connections = 4096;
  absl::Duration header_timeout = absl::Seconds(10);
  absl::Duration body_timeout = absl::Seconds(60);
  absl::Duration idle_timeout = absl::Seconds(60);
  absl::Duration write_timeout = absl::Seconds(30);
  // API keys (docs/security.md): null or not enabled = open. Must outlive the server.
  const ApiKeys* api_keys = nullptr;
  bool protect_health = false;  // /health needs a key too (with api_keys)
  // HTTPS (--tls-cert/--tls-key, docs/security.md): null = plaintext. Must outlive the server.
  HttpTlsContext* tls = nullptr;
};

class HttpServer {
 public:
  // `generation` must outlive the server.
  HttpServer(HttpServerOptions options, GenerationService* generation);
  ~HttpServer();  // Stop()

  // Binds and starts serving; returns the bound port. UNAVAILABLE when it cannot listen (e.g.
  // the port is taken).
  absl::StatusOr<int> Start();
  // Closes every connection (requests in flight are cancelled) and joins the request threads.
  // Idempotent.
  void Stop();

  // The connection cap in force and the connections open now (after Start).
  int max_connections() const { return server_ == nullptr ? 0 : server_->max_connections(); }
  int open_connections() const { return server_ == nullptr ? 0 : server_->open_connections(); }

 private:
  // On the event loop: routes, answers the cheap ones, starts a thread for generation.
  void HandleRequest(HttpRequest request, std::shared_ptr<HttpExchange> exchange);
  // On a request thread.
  void HandleGenerate(const HttpRequest& request, HttpExchange& exchange, bool chat,
                      const std::string& caller);
  void HandleModels(HttpExchange& exchange);
  void HandleHealth(HttpExchange& exchange);
  // Runs `fn` on a new thread, joining threads that finished; false once stopping.
  bool RunOnThread(std::function<void()> fn);

  const HttpServerOptions options_;
  GenerationService* const generation_;
  std::unique_ptr<EventHttpServer> server_;

  absl::Mutex threads_mu_;
  absl::flat_hash_map<uint64_t, std::thread> threads_ ABSL_GUARDED_BY(threads_mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(threads_mu_);
  uint64_t next_thread_ ABSL_GUARDED_BY(threads_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(threads_mu_) = false;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_HTTP_SERVER_H_
