#include "coordinator/http/tls_connection.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>

namespace g4 {
namespace {

// A BIO over a non-blocking socket that sends with MSG_NOSIGNAL (see the header).
int SocketOf(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

bool WouldBlock(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

int SocketWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = send(SocketOf(bio), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && WouldBlock(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int SocketRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = recv(SocketOf(bio), data, static_cast<size_t>(size), 0);
  if (n < 0 && WouldBlock(errno)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long SocketCtrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing buffered here
}

int SocketCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* SocketMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "g4 socket");
    BIO_meth_set_write(m, SocketWrite);
    BIO_meth_set_read(m, SocketRead);
    BIO_meth_set_ctrl(m, SocketCtrl);
    BIO_meth_set_create(m, SocketCreate);
    return m;
  }();
  return method;
}

}  // namespace

std::unique_ptr<TlsConnection> TlsConnection::Accept(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  BIO* bio = BIO_new(SocketMethod());
  if (bio == nullptr) {
    ERR_clear_error();
    SSL_free(ssl);
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);  // the SSL owns the BIO
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsConnection>(new TlsConnection(ssl));
}

TlsConnection::~TlsConnection() { SSL_free(ssl_); }

TlsIo TlsConnection::Result(int rc) {
  if (rc > 0) return {TlsIo::kOk, static_cast<size_t>(rc)};
  const int saved_errno = errno;
  const int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return {TlsIo::kWantRead, 0};
    case SSL_ERROR_WANT_WRITE:
      return {TlsIo::kWantWrite, 0};
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error();
      return {TlsIo::kClosed, 0};
    case SSL_ERROR_SYSCALL:
      failed_ = true;
      ERR_clear_error();
      if (saved_errno == 0) return {TlsIo::kClosed, 0};  // EOF without close_notify
      error_ = std::strerror(saved_errno);
      return {TlsIo::kFailed, 0};
    default: {
      failed_ = true;
      const unsigned long code = ERR_peek_error();
      if (ERR_GET_LIB(code) == ERR_LIB_SSL) {
        const int reason = ERR_GET_REASON(code);
        plaintext_http_ = reason == SSL_R_HTTP_REQUEST;
        // A peer that closed mid-record (OpenSSL 3's "unexpected eof") left, like an EOF.
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
          ERR_clear_error();
          return {TlsIo::kClosed, 0};
        }
      }
      const char* reason = code != 0 ? ERR_reason_error_string(code) : nullptr;
      error_ = reason != nullptr ? reason : "TLS error";
      ERR_clear_error();
      return {TlsIo::kFailed, 0};
    }
  }
}

TlsIo TlsConnection::Handshake() {
  ERR_clear_error();
  errno = 0;
  const TlsIo io = Result(SSL_do_handshake(ssl_));
  if (io.kind == TlsIo::kOk) handshake_done_ = true;
  handshake_needs_writable_ = io.kind == TlsIo::kWantWrite;
  return io;
}

TlsIo TlsConnection::Read(char* buffer, size_t size) {
  ERR_clear_error();
  errno = 0;
  const int n = size > INT_MAX ? INT_MAX : static_cast<int>(size);
  const TlsIo io = Result(SSL_read(ssl_, buffer, n));
  read_needs_writable_ = io.kind == TlsIo::kWantWrite;
  return io;
}

TlsIo TlsConnection::Write(const char* data, size_t size) {
  ERR_clear_error();
  errno = 0;
  const int n = size > INT_MAX ? INT_MAX : static_cast<int>(size);
  const TlsIo io = Result(SSL_write(ssl_, data, n));
  write_needs_readable_ = io.kind == TlsIo::kWantRead;
  return io;
}

void TlsConnection::Shutdown() {
  if (failed_ || shut_down_ || !handshake_done_) return;
  shut_down_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // sends close_notify if the socket takes it; the answer is not awaited
  ERR_clear_error();
}

std::string TlsConnection::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(ssl_, &data, &size);
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace g4
