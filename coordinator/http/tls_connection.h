// The server side of one TLS connection on a non-blocking socket, for the HTTP event loop
// (event_http_server.h). Nothing here blocks or waits: every call does what the socket allows
// now and says what it is waiting for. The loop drives it from readiness events:
//
// * Handshake() until kOk (the handshake is bounded by the server's head deadline, which runs
//   from accept);
// * Read() when the socket is readable, Write() when it is writable;
// * kWantRead / kWantWrite: call again when the socket is readable / writable. TLS can need the
//   other direction than the call's (a read that must first send, a write that must first
//   receive); read_needs_writable() / write_needs_readable() tell the loop which event to ask
//   for, in addition to its own.
//
// The socket I/O goes through a BIO of its own that sends with MSG_NOSIGNAL (OpenSSL's socket
// BIO write()s, and a peer that is gone would raise SIGPIPE in a process that does not ignore
// it). Writes may be partial (one TLS record at a time) and the buffer may move between a
// kWantWrite and the retry (SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER):
// the retry passes the same unsent bytes, possibly followed by more.
#ifndef G4SERVE_COORDINATOR_HTTP_TLS_CONNECTION_H_
#define G4SERVE_COORDINATOR_HTTP_TLS_CONNECTION_H_

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

namespace g4 {

struct TlsIo {
  enum Kind {
    kOk,         // done; `bytes` moved (Read/Write)
    kWantRead,   // call again when the socket is readable
    kWantWrite,  // call again when the socket is writable
    kClosed,     // the peer closed the connection (close_notify or EOF)
    kFailed,     // a TLS or socket error; TlsConnection::error() says which
  };
  Kind kind = kOk;
  size_t bytes = 0;
};

class TlsConnection {
 public:
  // The server side of accepted socket `fd` (non-blocking; not owned: the caller closes it).
  // Null when OpenSSL cannot make the connection object (out of memory).
  static std::unique_ptr<TlsConnection> Accept(SSL_CTX* ctx, int fd);
  ~TlsConnection();

  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  TlsIo Handshake();
  TlsIo Read(char* buffer, size_t size);
  TlsIo Write(const char* data, size_t size);
  // Sends close_notify if the socket takes it now; never waits for the peer's. After it the
  // connection is not used for TLS any more. Does nothing after a failure.
  void Shutdown();

  bool handshake_done() const { return handshake_done_; }
  // The handshake waits for the socket to be writable (else, until done, readable).
  bool handshake_needs_writable() const { return handshake_needs_writable_; }
  bool read_needs_writable() const { return read_needs_writable_; }
  bool write_needs_readable() const { return write_needs_readable_; }
  // After kFailed: OpenSSL's reason ("wrong version number", "http request", ...) or the errno.
  const std::string& error() const { return error_; }
  // After a failed handshake: the client spoke plaintext HTTP to this TLS port.
  bool plaintext_http() const { return plaintext_http_; }
  // The protocol negotiated by ALPN ("http/1.1"), or "" when the client offered none.
  std::string alpn() const;
  // "TLSv1.3" etc.
  const char* version() const { return SSL_get_version(ssl_); }

 private:
  explicit TlsConnection(SSL* ssl) : ssl_(ssl) {}
  // Maps the result `rc` of an SSL_* call to TlsIo; records errors.
  TlsIo Result(int rc);

  SSL* const ssl_;
  bool handshake_done_ = false;
  bool failed_ = false;
  bool shut_down_ = false;
  bool handshake_needs_writable_ = false;
  bool read_needs_writable_ = false;
  bool write_needs_readable_ = false;
  bool plaintext_http_ = false;
  std::string error_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_HTTP_TLS_CONNECTION_H_
