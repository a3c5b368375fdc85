// TLS for the OpenAI HTTP port (docs/security.md, "TLS on the public ports"): the server's
// OpenSSL context, made from the same --tls-cert / --tls-key as the public gRPC port and
// re-read every --tls-refresh-interval, and the rate-limited log of failed handshakes.
//
// * The files are checked like every TLS key pair of the project (common/tls_key_pair.h); at
//   start a mistake is an error naming the flag.
// * A thread re-reads both files every refresh interval. When their text changed and they are a
//   valid pair, a new context replaces the current one: handshakes from then on present the new
//   certificate; connections already open keep theirs (their SSL holds the old context). A pair
//   that cannot be read or does not match (e.g. the certificate replaced before its key) changes
//   nothing and logs one line per distinct content; the next round tries again.
// * TLS 1.2 at least, OpenSSL 3's default ciphers and groups, no renegotiation, ALPN
//   "http/1.1" (a client offering only other protocols gets no ALPN answer and may go on).
// * Handshake failures (a plaintext client, garbage, an unknown CA on the client's side, a
//   client that never finishes) are logged at most once per `log_interval`, each line counting
//   the failures it stands for, so that a scanner cannot flood the log.
#ifndef G4SERVE_COORDINATOR_HTTP_TLS_CONTEXT_H_
#define G4SERVE_COORDINATOR_HTTP_TLS_CONTEXT_H_

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace g4 {

struct HttpTlsOptions {
  std::string cert_file;  // --tls-cert: PEM certificate, then any intermediates
  std::string key_file;   // --tls-key: its PEM private key (unencrypted)
  absl::Duration refresh_interval = absl::Seconds(60);  // --tls-refresh-interval, >= 1s
  absl::Duration log_interval = absl::Seconds(10);  // at most one handshake-failure line per
};

class HttpTlsContext {
 public:
  using Log = std::function<void(const std::string&)>;

  // Checks and loads the pair (INVALID_ARGUMENT naming --tls-cert / --tls-key) and starts the
  // refresh thread.
  static absl::StatusOr<std::unique_ptr<HttpTlsContext>> Create(HttpTlsOptions options, Log log);
  ~HttpTlsContext();  // stops the thread

  HttpTlsContext(const HttpTlsContext&) = delete;
  HttpTlsContext& operator=(const HttpTlsContext&) = delete;

  // The context for a new connection (any thread).
  std::shared_ptr<SSL_CTX> Current() const;
  // One refresh round now (what the thread does every interval); true when the context changed.
  bool RefreshNow();

  // A handshake failed (or never finished) for `peer` because of `why` (the loop thread calls
  // this; thread-safe). Logs per the rate limit above.
  void HandshakeFailed(const std::string& peer, const std::string& why);
  // Failed handshakes so far (for tests and benchmarks).
  int64_t handshake_failures() const;

  const HttpTlsOptions& options() const { return options_; }

 private:
  HttpTlsContext(HttpTlsOptions options, Log log)
      : options_(std::move(options)), log_(std::move(log)) {}
  void Loop();

  const HttpTlsOptions options_;
  const Log log_;

  mutable absl::Mutex mu_;
  std::shared_ptr<SSL_CTX> current_ ABSL_GUARDED_BY(mu_);
  // The files' text in force (or last refused: logged once), to notice a change.
  std::string loaded_text_ ABSL_GUARDED_BY(mu_);
  std::string refused_text_ ABSL_GUARDED_BY(mu_);

  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;

  mutable absl::Mutex log_mu_;
  int64_t failures_ ABSL_GUARDED_BY(log_mu_) = 0;
  int64_t unlogged_ ABSL_GUARDED_BY(log_mu_) = 0;
  absl::Time last_line_ ABSL_GUARDED_BY(log_mu_) = absl::InfinitePast();

  std::thread thread_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_TLS_CONTEXT_H_
