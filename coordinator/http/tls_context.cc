#include "coordinator/http/tls_context.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/tls_key_pair.h"

namespace g4 {
namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int SelectAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_size,
               const unsigned char* offered, unsigned int offered_size, void* /*arg*/) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_size, kAlpnHttp11, sizeof kAlpnHttp11, offered,
                            offered_size) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

// A server context presenting `pair` (checked already).
absl::StatusOr<std::shared_ptr<SSL_CTX>> MakeContext(const TlsKeyPair& pair) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (ctx == nullptr) return absl::InternalError("TLS: SSL_CTX_new: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectAlpn, nullptr);
  if (SSL_CTX_use_certificate(ctx.get(), pair.chain[0].get()) != 1) {
    return absl::InvalidArgumentError("--tls-cert: " + OpenSslError());
  }
  for (size_t i = 1; i < pair.chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx.get(), pair.chain[i].get()) != 1) {
      return absl::InvalidArgumentError("--tls-cert: intermediate: " + OpenSslError());
    }
  }
  BIO* bio = BIO_new_mem_buf(pair.key_pem.data(), static_cast<int>(pair.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  const bool used = key != nullptr && SSL_CTX_use_PrivateKey(ctx.get(), key) == 1 &&
                    SSL_CTX_check_private_key(ctx.get()) == 1;
  EVP_PKEY_free(key);
  if (!used) return absl::InvalidArgumentError("--tls-key: " + OpenSslError());
  return ctx;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpTlsContext>> HttpTlsContext::Create(HttpTlsOptions options,
                                                                       Log log) {
  if (options.refresh_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-refresh-interval: at least 1s");
  }
  absl::StatusOr<TlsKeyPair> pair = ReadTlsKeyPair(
      {kPublicTlsCertFlag, options.cert_file, kPublicTlsKeyFlag, options.key_file});
  if (!pair.ok()) return pair.status();
  absl::StatusOr<std::shared_ptr<SSL_CTX>> ctx = MakeContext(*pair);
  if (!ctx.ok()) return ctx.status();
  std::unique_ptr<HttpTlsContext> tls(new HttpTlsContext(std::move(options), std::move(log)));
  {
    absl::MutexLock lock(&tls->mu_);
    tls->current_ = *std::move(ctx);
    tls->loaded_text_ = pair->cert_pem + pair->key_pem;
  }
  tls->thread_ = std::thread([t = tls.get()] { t->Loop(); });
  return tls;
}

HttpTlsContext::~HttpTlsContext() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<SSL_CTX> HttpTlsContext::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

bool HttpTlsContext::RefreshNow() {
  absl::StatusOr<TlsKeyPair> pair = ReadTlsKeyPair(
      {kPublicTlsCertFlag, options_.cert_file, kPublicTlsKeyFlag, options_.key_file});
  std::string text;
  absl::StatusOr<std::shared_ptr<SSL_CTX>> ctx = absl::UnknownError("");
  if (pair.ok()) {
    text = pair->cert_pem + pair->key_pem;
    {
      absl::MutexLock lock(&mu_);
      if (text == loaded_text_) {
        refused_text_.clear();  // back to the pair in force: a new failure is news again
        return false;
      }
    }
    ctx = MakeContext(*pair);
  }
  const absl::Status status = pair.ok() ? ctx.status() : pair.status();
  absl::MutexLock lock(&mu_);
  if (!status.ok()) {
    // Once per distinct failure (the same message again is the same broken state).
    const std::string refused = std::string(status.message()) + text;
    if (refused != refused_text_) {
      refused_text_ = refused;
      if (log_) {
        log_(absl::StrCat("HTTP TLS: keeping the certificate in force: ", status.message()));
      }
    }
    return false;
  }
  current_ = *std::move(ctx);
  loaded_text_ = std::move(text);
  refused_text_.clear();
  if (log_) {
    log_(absl::StrCat("HTTP TLS: ", options_.cert_file,
                      " changed: new connections get the new certificate"));
  }
  return true;
}

void HttpTlsContext::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.refresh_interval)) return;
    }
    RefreshNow();
  }
}

void HttpTlsContext::HandshakeFailed(const std::string& peer, const std::string& why) {
  absl::MutexLock lock(&log_mu_);
  ++failures_;
  const absl::Time now = absl::Now();
  if (now - last_line_ < options_.log_interval) {
    ++unlogged_;
    return;
  }
  if (log_) {
    log_(absl::StrCat("HTTP TLS: handshake with ", peer, " failed: ", why,
                      unlogged_ > 0 ? absl::StrCat(" (and ", unlogged_,
                                                   " more failed handshakes since the last line)")
                                    : ""));
  }
  unlogged_ = 0;
  last_line_ = now;
}

int64_t HttpTlsContext::handshake_failures() const {
  absl::MutexLock lock(&log_mu_);
  return failures_;
}

}  // namespace g4
