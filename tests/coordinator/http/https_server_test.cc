// TLS on the HTTP event loop (coordinator/http/tls_connection.h, tls_context.h; docs/security.md):
// an EventHttpServer with a certificate made at test time serves requests over TLS with
// keep-alive and ALPN http/1.1, streams a large response to a reader that stalls (partial TLS
// writes queued and resumed), answers a plaintext request 400, closes silent, half-hello and
// garbage clients at the head deadline without holding up anyone else (and logs them
// rate-limited), refuses TLS 1.1, and presents a refreshed certificate to new connections while
// open ones keep theirs.
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/numbers.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coordinator/http/event_http_server.h"
#include "coordinator/http/tls_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"
#include "tests/testing/loopback_socket.h"

namespace g4 {
namespace {

using ::g4::testing::IssueTestCertificate;
using ::g4::testing::MakeTestCa;
using ::g4::testing::ScopedTempDir;
using ::testing::HasSubstr;

int Connect(int port) { return ::g4::testing::ConnectLoopback(port, /*io_timeout_s=*/20); }

// A blocking TLS client that verifies the server against `ca_file` for the name "localhost".
class TlsClient {
 public:
  TlsClient(const std::string& ca_file, int port, int max_version = 0) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    if (max_version != 0) {
      SSL_CTX_set_security_level(ctx_, 0);  // let this client offer the old version at all
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_max_proto_version(ctx_, max_version);
    }
    static const unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn);
    fd_ = Connect(port);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    connected_ = fd_ >= 0 && SSL_connect(ssl_) == 1;
    ERR_clear_error();
  }
  ~TlsClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
    if (fd_ >= 0) close(fd_);
  }

  bool connected() const { return connected_; }
  std::string alpn() const {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  int version() const { return SSL_version(ssl_); }
  // The serial number of the server's certificate, in hex.
  std::string Serial() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr);
    char* hex = BN_bn2hex(bn);
    std::string serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
    X509_free(cert);
    return serial;
  }

  bool Send(const std::string& data) {
    return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
           static_cast<int>(data.size());
  }
  // Reads one response: its head and a Content-Length body, or a chunked body to its end.
  std::string ReadResponse() {
    std::string got;
    while (true) {
      const size_t head_end = got.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        const size_t cl = got.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) {
          size_t length = 0;
          const size_t eol = got.find("\r\n", cl);
          if (absl::SimpleAtoi(got.substr(cl + 16, eol - cl - 16), &length) &&
              got.size() >= head_end + 4 + length) {
            return got;
          }
        } else if (got.size() >= head_end + 9 && got.compare(got.size() - 5, 5, "0\r\n\r\n") == 0) {
          return got;
        }
      }
      char buf[16384];
      const int n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        ERR_clear_error();
        return got;
      }
      got.append(buf, static_cast<size_t>(n));
    }
  }
  std::string Get(const std::string& path) {
    if (!Send(absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n"))) return "";
    return ReadResponse();
  }

 private:
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
};

// The de-chunked body of a chunked response.
std::string Dechunk(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  if (at == std::string::npos) return "";
  at += 4;
  std::string body;
  while (at < response.size()) {
    const size_t eol = response.find("\r\n", at);
    if (eol == std::string::npos) break;
    const size_t size = std::stoul(response.substr(at, eol - at), nullptr, 16);
    if (size == 0) break;
    body += response.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return body;
}

// True when the server closes `fd` (EOF or reset) before `deadline`.
bool ClosedBy(int fd, absl::Time deadline) {
  char buf[4096];
  while (absl::Now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
  }
  return false;
}

// The first bytes of a real ClientHello (a client SSL writing into memory).
std::string HalfClientHello() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_connect(ssl);  // WANT_READ: the hello is in `out`
  ERR_clear_error();
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);
  std::string hello(data, static_cast<size_t>(size));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return hello.substr(0, hello.size() / 2);
}

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir_.path();
    ASSERT_TRUE(MakeTestCa(dir_, "ca"));
    ASSERT_TRUE(IssueTestCertificate(dir_, "server", "ca", "g4serve-coordinator"));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    for (std::thread& t : threads_) t.join();
  }

  // Starts a server on server.{crt,key}: "/hello" answers "hello"; "/stream?N" streams N chunks
  // of 4 KiB (chunk i filled with the letter 'a' + i % 26) from a thread of its own.
  void Start(absl::Duration header_timeout = absl::Seconds(10)) {
    HttpTlsOptions tls;
    tls.cert_file = dir_ + "/server.crt";
    tls.key_file = dir_ + "/server.key";
    absl::StatusOr<std::unique_ptr<HttpTlsContext>> context =
        HttpTlsContext::Create(tls, [this](const std::string& line) {
          absl::MutexLock lock(&log_mu_);
          log_.push_back(line);
        });
    ASSERT_TRUE(context.ok()) << context.status();
    tls_ = *std::move(context);
    EventHttpServerOptions options;
    options.header_timeout = header_timeout;
    options.tls = tls_.get();
    server_ = std::make_unique<EventHttpServer>(
        options,
        [this](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
          if (request.target == "/hello") {
            return exchange->Respond(200, "text/plain", "hello");
          }
          const size_t q = request.target.find('?');
          int chunks = 0;
          if (q == std::string::npos || !absl::SimpleAtoi(request.target.substr(q + 1), &chunks)) {
            return exchange->Respond(404, "text/plain", "no");
          }
          absl::MutexLock lock(&threads_mu_);
          threads_.emplace_back([exchange, chunks] {
            exchange->StartStream(200, "text/event-stream");
            for (int i = 0; i < chunks && !exchange->client_gone(); ++i) {
              exchange->Write(std::string(4096, static_cast<char>('a' + i % 26)));
            }
            exchange->Finish();
          });
        },
        [](int status, absl::string_view message) {
          return absl::StrCat("{\"status\":", status, ",\"message\":\"", message, "\"}");
        });
    absl::StatusOr<int> port = server_->Start();
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
  }

  std::vector<std::string> Log() {
    absl::MutexLock lock(&log_mu_);
    return log_;
  }
  std::string ca() const { return dir_ + "/ca.crt"; }

  ScopedTempDir temp_dir_{"https_server_test"};
  std::string dir_;
  std::unique_ptr<HttpTlsContext> tls_;
  std::unique_ptr<EventHttpServer> server_;
  int port_ = 0;
  absl::Mutex threads_mu_;
  std::vector<std::thread> threads_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(HttpsServerTest, ServesRequestsOverTlsWithKeepAlive) {
  Start();
  TlsClient client(ca(), port_);
  ASSERT_TRUE(client.connected());
  EXPECT_EQ(client.alpn(), "http/1.1");  // offered h2 first: the server picks HTTP/1.1
  EXPECT_GE(client.version(), TLS1_2_VERSION);
  for (int i = 0; i < 3; ++i) {  // one connection, three requests
    const std::string response = client.Get("/hello");
    EXPECT_THAT(response, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(response, ::testing::EndsWith("\r\n\r\nhello"));
  }
  EXPECT_EQ(tls_->handshake_failures(), 0);
}

TEST_F(HttpsServerTest, StreamsALargeResponseToAReaderThatStalls) {
  Start();
  TlsClient client(ca(), port_);
  ASSERT_TRUE(client.connected());
  constexpr int kChunks = 8192;  // 32 MiB: far more than the socket buffers hold
  ASSERT_TRUE(client.Send(absl::StrCat("GET /stream?", kChunks,
                                       " HTTP/1.1\r\nHost: localhost\r\n\r\n")));
  absl::SleepFor(absl::Milliseconds(500));  // the server's writes block meanwhile
  const std::string body = Dechunk(client.ReadResponse());
  ASSERT_EQ(body.size(), static_cast<size_t>(kChunks) * 4096);
  for (int i = 0; i < kChunks; ++i) {
    ASSERT_EQ(body[static_cast<size_t>(i) * 4096], static_cast<char>('a' + i % 26)) << i;
    ASSERT_EQ(body[static_cast<size_t>(i) * 4096 + 4095], static_cast<char>('a' + i % 26)) << i;
  }
  EXPECT_THAT(client.Get("/hello"), ::testing::EndsWith("hello"));  // and the connection goes on
}

TEST_F(HttpsServerTest, APlaintextRequestGets400AndOthersAreServed) {
  Start();
  const int fd = Connect(port_);
  ASSERT_GE(fd, 0);
  const std::string request = "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  std::string got;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_THAT(got, ::testing::StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(got, HasSubstr("this port serves HTTPS: use an https:// URL"));
  TlsClient client(ca(), port_);
  ASSERT_TRUE(client.connected());
  EXPECT_THAT(client.Get("/hello"), ::testing::EndsWith("hello"));
  EXPECT_EQ(tls_->handshake_failures(), 1);
  ASSERT_EQ(Log().size(), 1u);
  EXPECT_THAT(Log()[0], HasSubstr("a plaintext HTTP request (the client must use https://)"));
}

TEST_F(HttpsServerTest, SilentHalfHelloAndGarbageClientsAreClosedAtTheDeadline) {
  // Others must be served well before the stalled clients' deadline: they do not wait for it.
  constexpr absl::Duration kHeadDeadline = absl::Seconds(5);
  Start(kHeadDeadline);
  std::vector<int> stuck;
  for (int i = 0; i < 20; ++i) stuck.push_back(Connect(port_));  // connect, send nothing
  const std::string half = HalfClientHello();
  ASSERT_GT(half.size(), 10u);
  for (int i = 0; i < 5; ++i) {
    stuck.push_back(Connect(port_));
    ASSERT_EQ(send(stuck.back(), half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
  }
  const absl::Time opened = absl::Now();
  // Garbage: not TLS at all. Closed at once.
  const int garbage = Connect(port_);
  const std::string junk(300, '\x7f');
  ASSERT_EQ(send(garbage, junk.data(), junk.size(), 0), static_cast<ssize_t>(junk.size()));
  EXPECT_TRUE(ClosedBy(garbage, absl::Now() + absl::Seconds(4)));
  close(garbage);
  // Meanwhile others are served.
  for (int i = 0; i < 5; ++i) {
    TlsClient client(ca(), port_);
    ASSERT_TRUE(client.connected());
    EXPECT_THAT(client.Get("/hello"), ::testing::EndsWith("hello"));
  }
  EXPECT_LT(absl::Now() - opened, kHeadDeadline - absl::Seconds(1));
  for (int fd : stuck) {
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(ClosedBy(fd, opened + kHeadDeadline + absl::Seconds(15)));
    close(fd);
  }
  EXPECT_GE(absl::Now() - opened, kHeadDeadline - absl::Seconds(1));  // not before the deadline
  EXPECT_EQ(tls_->handshake_failures(), 26);
  // 26 failures within 10 s: one line (the rest would be counted into the next one).
  const std::vector<std::string> log = Log();
  ASSERT_FALSE(log.empty());
  EXPECT_LE(log.size(), 2u) << log.back();  // 2 only on a machine so slow that 10 s passed
  EXPECT_THAT(log[0], HasSubstr("HTTP TLS: handshake with 127.0.0.1:"));
}

TEST_F(HttpsServerTest, Tls11IsRefused) {
  Start();
  TlsClient old(ca(), port_, TLS1_1_VERSION);
  EXPECT_FALSE(old.connected());
  TlsClient client(ca(), port_);
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(tls_->handshake_failures(), 1);
  ASSERT_EQ(Log().size(), 1u);
  EXPECT_THAT(Log()[0], HasSubstr("unsupported protocol"));
}

TEST_F(HttpsServerTest, NewConnectionsGetARefreshedCertificateOpenOnesKeepTheirs) {
  Start();
  TlsClient before(ca(), port_);
  ASSERT_TRUE(before.connected());
  const std::string old_serial = before.Serial();
  ASSERT_FALSE(old_serial.empty());
  EXPECT_FALSE(tls_->RefreshNow());  // unchanged files: nothing to do

  // A new certificate replaces the old one before its key does: refused, the old pair stays.
  ASSERT_TRUE(IssueTestCertificate(dir_, "renewed", "ca", "g4serve-coordinator"));
  std::filesystem::copy_file(dir_ + "/renewed.crt", dir_ + "/server.crt",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_FALSE(tls_->RefreshNow());
  EXPECT_FALSE(tls_->RefreshNow());  // logged once
  {
    TlsClient during(ca(), port_);
    ASSERT_TRUE(during.connected());
    EXPECT_EQ(during.Serial(), old_serial);
  }
  std::filesystem::copy_file(dir_ + "/renewed.key", dir_ + "/server.key",
                             std::filesystem::copy_options::overwrite_existing);
  EXPECT_TRUE(tls_->RefreshNow());

  TlsClient after(ca(), port_);
  ASSERT_TRUE(after.connected());
  EXPECT_NE(after.Serial(), old_serial);
  EXPECT_THAT(after.Get("/hello"), ::testing::EndsWith("hello"));
  // The connection made before still works, with the certificate it was made with.
  EXPECT_EQ(before.Serial(), old_serial);
  EXPECT_THAT(before.Get("/hello"), ::testing::EndsWith("hello"));
  const std::vector<std::string> log = Log();
  ASSERT_EQ(log.size(), 2u);
  EXPECT_THAT(log[0], HasSubstr("keeping the certificate in force: --tls-key"));
  EXPECT_THAT(log[0], HasSubstr("not the key of --tls-cert"));
  EXPECT_THAT(log[1], HasSubstr("changed: new connections get the new certificate"));
}

TEST_F(HttpsServerTest, BadFilesAreRefusedNamingTheFlag) {
  auto create = [&](const std::string& cert, const std::string& key) {
    HttpTlsOptions o;
    o.cert_file = dir_ + "/" + cert;
    o.key_file = dir_ + "/" + key;
    absl::StatusOr<std::unique_ptr<HttpTlsContext>> tls = HttpTlsContext::Create(o, nullptr);
    return tls.ok() ? std::string("ok") : std::string(tls.status().message());
  };
  ASSERT_TRUE(IssueTestCertificate(dir_, "other", "ca", "g4serve-coordinator"));
  EXPECT_EQ(create("server.crt", "server.key"), "ok");
  EXPECT_THAT(create("missing.crt", "server.key"), HasSubstr("--tls-cert "));
  EXPECT_THAT(create("missing.crt", "server.key"), HasSubstr("missing.crt: cannot be read"));
  EXPECT_THAT(create("server.key", "server.key"), HasSubstr("server.key: no PEM certificate"));
  EXPECT_THAT(create("server.crt", "server.crt"), HasSubstr("--tls-key "));
  EXPECT_THAT(create("server.crt", "other.key"), HasSubstr("not the key of --tls-cert"));
}

}  // namespace
}  // namespace g4
