// g4-bench-https: what TLS on the OpenAI HTTP port (--tls-cert/--tls-key, docs/security.md)
// costs the coordinator, against the same coordinator in plaintext in the same run
// (docs/performance.md, "HTTPS"). Two coordinators run side by side, one plaintext, one with a
// certificate made at start (tests/testing/make_test_certificates.sh; run from the repository
// root), each in front of its own stand-in workers (stand_in_worker.h: they stream tokens
// without a model). Two measures, each as the coordinator's CPU time (utime + stime from /proc,
// less its idle rate) per unit:
//
// * connections: closed-loop clients open a connection, (handshake,) GET /v1/models with
//   `Connection: close`, read to EOF. CPU per connection; the TLS-less difference is the
//   handshake, and 1 s / (TLS CPU per connection) is the handshakes per second one coordinator
//   core sustains (new sessions, no resumption: TLS 1.3, X25519, an ECDSA P-256 certificate).
// * streaming: N clients on keep-alive connections send streamed completions back to back
//   (SSE, --max-tokens tokens each, one token per event); CPU per streamed token.
//
// The clients run on the same machine and compete with the coordinator for CPU; the figures are
// the coordinator's own CPU, not wall time. On a shared machine other load shifts them from one
// measure to the next: each measure runs --rounds times, plaintext and TLS alternating, and the
// table gives the medians (and the spread of the TLS cost).
//
//   g4-bench-https [--model DIR] [--replicas N] [--itl 20ms] [--max-tokens N] [--duration 5s]
//                  [--streams 8,64] [--connection-clients 4] [--rounds 3] [--coordinator PATH]
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags/flag_set.h"
#include "tests/integration/process.h"
#include "tools/bench/bench_util.h"
#include "tools/bench/stand_in_worker.h"
#include "tests/testing/loopback_socket.h"

namespace g4 {
namespace {

struct Options {
  std::string coordinator = G4_COORDINATOR_BIN;
  std::string model = "tests/data/golden/dense";
  int replicas = 2;
  absl::Duration itl = absl::Milliseconds(20);
  int max_tokens = 64;
  absl::Duration duration = absl::Seconds(5);
  std::vector<int> streams = {8, 64};
  int connection_clients = 4;
  int rounds = 3;
};

void DeclareFlags(FlagSet& flags, Options& o) {
  flags.Add("model", &o.model, "model directory the coordinators read").Value("DIR").NonEmpty();
  flags.Add("replicas", &o.replicas, "stand-in workers per coordinator (one replica each)").Min(1);
  flags.Add("itl", &o.itl, "the stand-in workers' inter-token latency")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("max-tokens", &o.max_tokens, "tokens per streamed request").Min(1);
  flags.Add("duration", &o.duration, "closed-loop time per measure")
      .MinExclusive(absl::ZeroDuration());
  flags
      .AddCustom("streams", "N,N,...", "concurrent streams, one level each",
                 [&o](absl::string_view v) {
                   if (bench::ParsePositiveInts(v, &o.streams)) return absl::OkStatus();
                   return absl::InvalidArgumentError(
                       absl::StrCat("expected positive integers like 8,64, got \"", v, "\""));
                 })
      .Default(absl::StrJoin(o.streams, ","));
  flags.Add("connection-clients", &o.connection_clients,
            "client threads opening connections in the connection measure")
      .Min(1);
  flags.Add("rounds", &o.rounds,
            "each measure this many times, plaintext and TLS alternating; the table gives "
            "the medians")
      .Min(1);
  flags.Add("coordinator", &o.coordinator, "the g4-coordinator binary")
      .Value("PATH")
      .NonEmpty()
      .Default("the one built with this benchmark");
}

// One client connection, plaintext or TLS (blocking I/O).
class Connection {
 public:
  // Null when the connection or the handshake fails.
  static std::unique_ptr<Connection> Open(int port, SSL_CTX* tls) {
    const int fd = ::g4::testing::ConnectLoopback(port);
    if (fd < 0) return nullptr;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_ptr<Connection> c(new Connection(fd));
    if (tls != nullptr) {
      c->ssl_ = SSL_new(tls);
      SSL_set_fd(c->ssl_, fd);
      SSL_set_tlsext_host_name(c->ssl_, "localhost");
      if (SSL_connect(c->ssl_) != 1) {
        ERR_clear_error();
        return nullptr;
      }
    }
    return c;
  }
  ~Connection() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    close(fd_);
  }

  bool Send(const std::string& data) {
    if (ssl_ != nullptr) {
      return SSL_write(ssl_, data.data(), static_cast<int>(data.size())) ==
             static_cast<int>(data.size());
    }
    return send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(data.size());
  }
  // Appends what arrives to `out`; false at EOF or on an error.
  bool Read(std::string& out) {
    char buf[16384];
    const int n = ssl_ != nullptr ? SSL_read(ssl_, buf, sizeof buf)
                                  : static_cast<int>(recv(fd_, buf, sizeof buf, 0));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    return true;
  }

 private:
  explicit Connection(int fd) : fd_(fd) {}
  const int fd_;
  SSL* ssl_ = nullptr;
};

// A coordinator (plaintext or TLS) with its stand-in workers.
struct Server {
  bool tls = false;
  testing::Process process;
  int http_port = 0;
  std::vector<std::unique_ptr<StandInWorker>> workers;
  double idle_rate = 0;  // CPU seconds per second, idle
};

absl::Status StartServer(const Options& o, const std::string& dir, bool tls, Server& s) {
  s.tls = tls;
  const std::string name = tls ? "tls" : "plain";
  const std::string port_file = absl::StrCat(dir, "/", name, ".port");
  const std::string http_port_file = absl::StrCat(dir, "/", name, ".http_port");
  const std::string internal_port_file = absl::StrCat(dir, "/", name, ".internal_port");
  // The stand-ins register on the internal port (plaintext), not the public one (TLS).
  std::vector<std::string> argv = {
      o.coordinator, "--model", o.model, "--host", "127.0.0.1", "--port", "0", "--port-file",
      port_file, "--http-port", "0", "--http-port-file", http_port_file, "--internal-port", "0",
      "--internal-port-file", internal_port_file, "--num-replicas", absl::StrCat(o.replicas)};
  if (tls) {
    argv.insert(argv.end(), {"--tls-cert", dir + "/coordinator.crt", "--tls-key",
                             dir + "/coordinator.key"});
  }
  if (!s.process.Start(argv, absl::StrCat(dir, "/", name, ".log"))) {
    return absl::InternalError("cannot start " + o.coordinator);
  }
  const int port = testing::WaitForPortFile(internal_port_file, absl::Seconds(20));
  s.http_port = testing::WaitForPortFile(http_port_file, absl::Seconds(20));
  if (port <= 0 || s.http_port <= 0) {
    return absl::InternalError("coordinator did not start:\n" + s.process.Log());
  }
  for (int i = 0; i < o.replicas; ++i) {
    StandInWorkerOptions so;
    so.coordinator = absl::StrCat("127.0.0.1:", port);
    so.itl = o.itl;
    so.default_max_tokens = o.max_tokens;
    absl::StatusOr<std::unique_ptr<StandInWorker>> w = StandInWorker::Start(so);
    if (!w.ok()) return w.status();
    s.workers.push_back(*std::move(w));
  }
  return absl::OkStatus();
}

// Waits until /health answers 200 (all replicas loaded).
bool WaitReady(const Server& s, SSL_CTX* tls, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::unique_ptr<Connection> c = Connection::Open(s.http_port, s.tls ? tls : nullptr);
    std::string response;
    if (c != nullptr && c->Send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
      while (c->Read(response)) {
      }
      if (response.rfind("HTTP/1.1 200", 0) == 0) return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

template <typename Fn>
void ClosedLoop(int threads, absl::Duration duration, Fn fn) {
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { fn(t, end); });
  }
  for (std::thread& t : pool) t.join();
}

struct Measure {
  double count = 0;       // connections or tokens
  double per_second = 0;  // of those
  double cpu_us = 0;      // the coordinator's, above idle, per one
  int64_t failed = 0;
};

// What `count` units cost the coordinator of `s` since `start` (its CPU then: `cpu_before`).
Measure Summarize(const Server& s, int64_t count, int64_t failed, absl::Time start,
                  double cpu_before) {
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double cpu = bench::ProcessCpuSeconds(s.process.pid()) - cpu_before;
  Measure m;
  m.count = static_cast<double>(count);
  m.per_second = m.count / seconds;
  m.cpu_us = m.count > 0 ? std::max(0.0, cpu - s.idle_rate * seconds) * 1e6 / m.count : 0;
  m.failed = failed;
  return m;
}

Measure Connections(const Options& o, Server& s, SSL_CTX* tls) {
  std::atomic<int64_t> done{0}, failed{0};
  const double cpu_before = bench::ProcessCpuSeconds(s.process.pid());
  const absl::Time start = absl::Now();
  ClosedLoop(o.connection_clients, o.duration, [&](int, absl::Time end) {
    while (absl::Now() < end) {
      std::unique_ptr<Connection> c = Connection::Open(s.http_port, s.tls ? tls : nullptr);
      std::string response;
      if (c == nullptr ||
          !c->Send("GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
        ++failed;
        continue;
      }
      while (c->Read(response)) {
      }
      if (response.rfind("HTTP/1.1 200", 0) == 0) {
        ++done;
      } else {
        ++failed;
      }
    }
  });
  return Summarize(s, done.load(), failed.load(), start, cpu_before);
}

// The completion_tokens of the last usage object in `body`; -1 if none.
int CompletionTokens(const std::string& body) {
  const size_t at = body.rfind("\"completion_tokens\":");
  if (at == std::string::npos) return -1;
  int n = -1;
  const size_t begin = at + 20;
  const size_t end = body.find_first_of(",}", begin);
  return absl::SimpleAtoi(body.substr(begin, end - begin), &n) ? n : -1;
}

Measure Streams(const Options& o, Server& s, SSL_CTX* tls, int streams) {
  std::atomic<int64_t> tokens{0}, failed{0};
  const std::string body = absl::StrCat(
      R"({"model":"dense","prompt":[10,11,12,13,14,15,16,17],"max_tokens":)", o.max_tokens,
      R"(,"stream":true,"stream_options":{"include_usage":true},"ignore_eos":true})");
  const std::string request =
      absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: ",
                   body.size(), "\r\n\r\n", body);
  const double cpu_before = bench::ProcessCpuSeconds(s.process.pid());
  const absl::Time start = absl::Now();
  ClosedLoop(streams, o.duration, [&](int, absl::Time end) {
    std::unique_ptr<Connection> c;
    while (absl::Now() < end) {
      if (c == nullptr) c = Connection::Open(s.http_port, s.tls ? tls : nullptr);
      if (c == nullptr || !c->Send(request)) {
        ++failed;
        c.reset();
        continue;
      }
      std::string response;
      bool ok = true;
      while (response.find("\r\n0\r\n\r\n") == std::string::npos) {
        if (!c->Read(response)) {
          ok = false;
          break;
        }
      }
      const int n = CompletionTokens(response);
      if (!ok || n <= 0) {
        ++failed;
        c.reset();
        continue;
      }
      tokens += n;
    }
  });
  return Summarize(s, tokens.load(), failed.load(), start, cpu_before);
}

// Runs `measure(server)` --rounds times on each server, alternating; the median per server
// (by CPU per unit) and the smallest and largest TLS-minus-plaintext difference of a round.
struct Pair {
  Measure plain, tls;
  double min_added = 0, max_added = 0;
};
template <typename Fn>
Pair Alternating(const Options& o, Fn measure) {
  std::vector<Measure> plain, tls;
  std::vector<double> added;
  for (int r = 0; r < o.rounds; ++r) {
    plain.push_back(measure(0));
    tls.push_back(measure(1));
    added.push_back(tls.back().cpu_us - plain.back().cpu_us);
  }
  auto median = [](std::vector<Measure> v) {
    std::sort(v.begin(), v.end(),
              [](const Measure& a, const Measure& b) { return a.cpu_us < b.cpu_us; });
    Measure m = v[v.size() / 2];
    for (const Measure& x : v) m.failed = std::max(m.failed, x.failed);
    return m;
  };
  Pair p{median(plain), median(tls)};
  p.min_added = *std::min_element(added.begin(), added.end());
  p.max_added = *std::max_element(added.begin(), added.end());
  return p;
}

int Main(int argc, char** argv) {
  Options o;
  FlagSet flags("g4-bench-https", "[flags]",
                "The coordinator's CPU for TLS on the OpenAI HTTP port: per connection "
                "(handshake) and per streamed token, against plaintext in the same run "
                "(docs/performance.md, \"HTTPS\").");
  DeclareFlags(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return FlagError("g4-bench-https", s);
  if (flags.help()) return PrintUsage(flags.Usage());
  std::string dir = std::filesystem::temp_directory_path() / "g4-bench-https.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr ||
      std::system(("bash tests/testing/make_test_certificates.sh '" + dir + "'").c_str()) != 0) {
    std::fprintf(stderr, "cannot make the test certificates (run from the repository root)\n");
    return 1;
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> tls(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  SSL_CTX_set_verify(tls.get(), SSL_VERIFY_PEER, nullptr);
  SSL_CTX_load_verify_locations(tls.get(), (dir + "/ca.crt").c_str(), nullptr);
  SSL_CTX_set_session_cache_mode(tls.get(), SSL_SESS_CACHE_OFF);  // every handshake a full one

  Server servers[2];
  for (int i = 0; i < 2; ++i) {
    if (absl::Status s = StartServer(o, dir, /*tls=*/i == 1, servers[i]); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }
  for (Server& s : servers) {
    if (!WaitReady(s, tls.get(), absl::Seconds(30))) {
      std::fprintf(stderr, "replicas not ready:\n%s\n", s.process.Log().c_str());
      return 1;
    }
  }
  // Each coordinator's idle CPU (health checks), subtracted from what the clients cost.
  const double before[2] = {bench::ProcessCpuSeconds(servers[0].process.pid()),
                            bench::ProcessCpuSeconds(servers[1].process.pid())};
  const absl::Time idle_start = absl::Now();
  absl::SleepFor(absl::Seconds(3));
  const double idle_seconds = absl::ToDoubleSeconds(absl::Now() - idle_start);
  for (int i = 0; i < 2; ++i) {
    servers[i].idle_rate =
        (bench::ProcessCpuSeconds(servers[i].process.pid()) - before[i]) / idle_seconds;
  }
  std::printf("# g4-bench-https: %d stand-in replicas per coordinator, stand-in ITL %s, %d tokens "
              "per stream, %s per measure, %d connection clients, %d rounds (medians); idle CPU "
              "%.1f%% / %.1f%% of a core (plaintext / TLS)\n",
              o.replicas, absl::FormatDuration(o.itl).c_str(), o.max_tokens,
              absl::FormatDuration(o.duration).c_str(), o.connection_clients, o.rounds,
              100 * servers[0].idle_rate, 100 * servers[1].idle_rate);
  std::printf("\n| measure | plaintext /s | plaintext CPU us each | TLS /s | TLS CPU us each | "
              "TLS adds us (median; rounds min..max) | failed |\n|---|---|---|---|---|---|---|\n");
  auto row = [](const std::string& what, const Pair& p) {
    std::printf("| %s | %.0f | %.1f | %.0f | %.1f | %+.1f (%+.1f..%+.1f) | %lld / %lld |\n",
                what.c_str(), p.plain.per_second, p.plain.cpu_us, p.tls.per_second, p.tls.cpu_us,
                p.tls.cpu_us - p.plain.cpu_us, p.min_added, p.max_added,
                static_cast<long long>(p.plain.failed), static_cast<long long>(p.tls.failed));
    std::fflush(stdout);
  };
  const Pair connections =
      Alternating(o, [&](int i) { return Connections(o, servers[i], tls.get()); });
  const Measure& tls_connections = connections.tls;
  const Measure& plain_connections = connections.plain;
  row("connection (GET /v1/models, Connection: close)", connections);
  for (int streams : o.streams) {
    row(absl::StrCat("streamed token, ", streams, " keep-alive streams"),
        Alternating(o, [&](int i) { return Streams(o, servers[i], tls.get(), streams); }));
  }
  std::printf("\nhandshakes per second one coordinator core sustains (1 s / TLS CPU per "
              "connection): %.0f (plaintext connections: %.0f)\n",
              tls_connections.cpu_us > 0 ? 1e6 / tls_connections.cpu_us : 0,
              plain_connections.cpu_us > 0 ? 1e6 / plain_connections.cpu_us : 0);
  for (Server& s : servers) {
    for (auto& w : s.workers) w->Stop();
    s.process.Kill(SIGTERM);
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace g4

int main(int argc, char** argv) { return g4::Main(argc, argv); }
