#include "coordinator/http/event_http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "coordinator/http/tls_connection.h"

namespace g4 {
namespace {

constexpr uint64_t kListenerTag = 0;
constexpr uint64_t kWakeTag = 1;
// File descriptors kept for everything but HTTP connections (gRPC, workers, files).
constexpr int kReservedDescriptors = 256;
constexpr size_t kReadChunk = 64 << 10;

std::string ErrnoText(int err) { return std::strerror(err); }

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the soft limit in force.
int RaiseDescriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > (1u << 30)) return 1 << 30;
  return static_cast<int>(limit.rlim_cur);
}

// "host:port" of the socket's peer, for log lines.
std::string PeerOf(int fd) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (peer.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&peer);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    return absl::StrCat("[", host, "]:", port);
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&peer);
  inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
  port = ntohs(a->sin_port);
  return absl::StrCat(host, ":", port);
}

}  // namespace

// Exchanges post the ids of connections with new output here; the loop wakes on the eventfd.
class EventHttpServer::Mailbox final : public HttpMailbox {
 public:
  explicit Mailbox(int wake_fd) : wake_fd_(wake_fd) {}

  void Post(uint64_t connection_id) override {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    ids_.push_back(connection_id);
    if (!signaled_) {
      signaled_ = true;
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
    }
  }
  // Wake(): for Stop().
  void Wake() {
    absl::MutexLock lock(&mu_);
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
  std::vector<uint64_t> Take() {
    absl::MutexLock lock(&mu_);
    signaled_ = false;
    std::vector<uint64_t> ids;
    ids.swap(ids_);
    return ids;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  const int wake_fd_;
  absl::Mutex mu_;
  std::vector<uint64_t> ids_ ABSL_GUARDED_BY(mu_);
  bool signaled_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

struct EventHttpServer::Connection {
  Connection(uint64_t id, int fd, const HttpLimits& limits, absl::Time now)
      : id(id), fd(fd), parser(limits), request_start(now) {}

  enum class State {
    kReading,    // waiting for or reading a request
    kAnswering,  // the handler has the request; output flows from the exchange
    kLingering,  // response sent, write side shut: dropping input until EOF, then close
  };

  const uint64_t id;
  const int fd;
  State state = State::kReading;
  HttpRequestParser parser;
  bool fresh = true;         // no request dispatched yet: the head deadline runs from accept
  absl::Time request_start;  // accept (fresh) or the first byte of the current request
  absl::Time body_start;
  absl::Time idle_since;
  absl::Time linger_until;
  std::unique_ptr<TlsConnection> tls;      // on a TLS port
  std::shared_ptr<HttpExchange> exchange;  // kAnswering
  bool response_complete = false;
  bool keep_alive = false;
  std::string out;
  size_t out_pos = 0;
  absl::Time last_write;  // last write progress while output is pending
  absl::Time deadline = absl::InfiniteFuture();
  uint32_t interest = 0;

  bool has_output() const { return out_pos < out.size(); }
  // No request in progress and nothing to send: what the cap sheds first.
  bool idle() const {
    return state == State::kReading && !parser.in_request() && !has_output();
  }
};

EventHttpServer::EventHttpServer(EventHttpServerOptions options, HttpHandler handler,
                                 HttpErrorBody error_body)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      error_body_(std::move(error_body)) {}

EventHttpServer::~EventHttpServer() { Stop(); }

absl::StatusOr<int> EventHttpServer::Start() {
  const std::string where = absl::StrCat(options_.host, ":", options_.port);
  max_connections_ = std::max(
      1, std::min(options_.max_connections, RaiseDescriptorLimit() - kReservedDescriptors));

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string host = options_.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = absl::StrCat(options_.port);
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", where, " (HTTP): ", gai_strerror(rc)));
  }
  int err = 0;
  for (addrinfo* a = found; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    // SO_REUSEADDR only lets a restarted server bind past TIME_WAIT; on Linux it never lets two
    // listeners share a port. SO_REUSEPORT (which would) is deliberately not set.
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      err = errno;
      close(fd);
      continue;
    }
    listen_fd_ = fd;
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", where, " (HTTP): ", ErrnoText(err)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  const int bound_port = bound.ss_family == AF_INET6
                             ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                             : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    err = errno;
    Stop();
    return absl::InternalError(absl::StrCat("HTTP server: epoll/eventfd: ", ErrnoText(err)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeTag;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  mailbox_ = std::make_shared<Mailbox>(wake_fd_);
  loop_ = std::thread([this] { Loop(); });
  return bound_port;
}

void EventHttpServer::Stop() {
  stop_.store(true);
  if (loop_.joinable()) {
    mailbox_->Wake();
    loop_.join();
  }
  if (mailbox_ != nullptr) mailbox_->Close();
  for (int* fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

void EventHttpServer::Loop() {
  std::vector<epoll_event> events(256);
  while (!stop_.load()) {
    absl::Time now = absl::Now();
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                             NextTimeoutMs(now));
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kListenerTag) {
        AcceptAll();
      } else if (tag == kWakeTag) {
        uint64_t count;
        [[maybe_unused]] ssize_t r = read(wake_fd_, &count, sizeof count);
        for (uint64_t id : mailbox_->Take()) {
          auto it = connections_.find(id);
          if (it != connections_.end() && it->second->state == Connection::State::kAnswering) {
            ServiceExchange(*it->second);
          }
        }
      } else {
        OnEvent(tag, events[i].events);
      }
    }
    while (!reparse_.empty()) {
      std::vector<uint64_t> ids;
      ids.swap(reparse_);
      for (uint64_t id : ids) {
        auto it = connections_.find(id);
        if (it != connections_.end() && it->second->state == Connection::State::kReading) {
          Parse(*it->second, "");
        }
      }
    }
    now = absl::Now();
    ExpireDeadlines(now);
    if (accept_paused_until_ != absl::InfinitePast() && now >= accept_paused_until_) {
      accept_paused_until_ = absl::InfinitePast();
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenerTag;
      epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
    }
  }
  std::vector<uint64_t> ids;
  for (const auto& [id, c] : connections_) ids.push_back(id);
  for (uint64_t id : ids) Close(id);
}

int EventHttpServer::NextTimeoutMs(absl::Time now) const {
  absl::Time next = now + absl::Seconds(1);
  if (!deadlines_.empty()) next = std::min(next, deadlines_.begin()->first);
  if (accept_paused_until_ != absl::InfinitePast()) next = std::min(next, accept_paused_until_);
  if (next <= now) return 0;
  return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(next - now, absl::Milliseconds(1))));
}

void EventHttpServer::AcceptAll() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if ((errno == EMFILE || errno == ENFILE) && !ShedIdle()) {
        // Out of descriptors with nothing to shed: stop accepting for a moment rather than spin.
        accept_paused_until_ = absl::Now() + absl::Milliseconds(100);
        epoll_event ev{};
        ev.data.u64 = kListenerTag;
        epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
      }
      return;
    }
    if (static_cast<int>(connections_.size()) >= max_connections_ && !ShedIdle()) {
      if (options_.tls != nullptr) {
        close(fd);
      } else {
        RejectOverCap(fd);
      }
      continue;
    }
    std::unique_ptr<TlsConnection> tls;
    if (options_.tls != nullptr) {
      // The context in force now: a refreshed certificate applies from the next accept.
      tls = TlsConnection::Accept(options_.tls->Current().get(), fd);
      if (tls == nullptr) {
        close(fd);
        continue;
      }
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id_++;
    auto c = std::make_unique<Connection>(id, fd, options_.limits, absl::Now());
    c->tls = std::move(tls);
    Connection& conn = *c;
    connections_.emplace(id, std::move(c));
    open_connections_.fetch_add(1, std::memory_order_relaxed);
    UpdateInterest(conn);
    SetDeadline(conn, conn.request_start + options_.header_timeout);
  }
}

bool EventHttpServer::ShedIdle() {
  Connection* oldest = nullptr;
  for (const auto& [id, c] : connections_) {
    if (!c->idle()) continue;
    const absl::Time since = c->fresh ? c->request_start : c->idle_since;
    const absl::Time oldest_since =
        oldest == nullptr ? absl::InfiniteFuture()
                          : (oldest->fresh ? oldest->request_start : oldest->idle_since);
    if (since < oldest_since) oldest = c.get();
  }
  if (oldest == nullptr) return false;
  Close(oldest->id);
  return true;
}

void EventHttpServer::RejectOverCap(int fd) {
  const std::string body = error_body_(
      503, absl::StrCat("server busy: ", max_connections_,
                        " connections are open (the limit) and none is idle; retry later"));
  const std::string response = absl::StrCat(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ",
      body.size(), "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n", body);
  [[maybe_unused]] ssize_t n = send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  // Drop what the client already sent, so that closing does not reset the connection before it
  // reads the answer.
  char sink[4096];
  while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  shutdown(fd, SHUT_WR);
  close(fd);
}

void EventHttpServer::OnEvent(uint64_t id, uint32_t events) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (events & EPOLLERR) return Close(id);
  // TLS may need the other direction than the operation's: a write that waits for readable, a
  // read that waits for writable.
  const bool writable = (events & EPOLLOUT) ||
                        (c.tls != nullptr && c.tls->write_needs_readable() && (events & EPOLLIN));
  switch (c.state) {
    case Connection::State::kReading:
      if (c.tls != nullptr && !c.tls->handshake_done()) return DriveHandshake(c);
      if (writable) {
        if (!Flush(c)) return;
        UpdateInterest(c);
      }
      if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) ||
          (c.tls != nullptr && c.tls->read_needs_writable() && (events & EPOLLOUT))) {
        OnReadable(c);
      }
      return;
    case Connection::State::kAnswering:
      // The client closed its side while its request is being answered: it is gone.
      if (events & (EPOLLRDHUP | EPOLLHUP)) return Close(id);
      if (writable) {
        if (!Flush(c)) return;
        if (c.response_complete && !c.has_output()) return AfterResponse(c);
        UpdateInterest(c);
        SetDeadline(c, c.has_output() ? c.last_write + options_.write_timeout
                                      : absl::InfiniteFuture());
      }
      return;
    case Connection::State::kLingering: {
      char sink[kReadChunk];
      const ssize_t n = recv(c.fd, sink, sizeof sink, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Close(id);
      return;
    }
  }
}

void EventHttpServer::DriveHandshake(Connection& c) {
  const TlsIo io = c.tls->Handshake();
  switch (io.kind) {
    case TlsIo::kOk:
      UpdateInterest(c);
      // The request may have come with the client's last handshake flight.
      return OnReadable(c);
    case TlsIo::kWantRead:
    case TlsIo::kWantWrite:
      return UpdateInterest(c);
    case TlsIo::kClosed:  // connected and left (a TCP probe, a port scan): not worth a line
      return Close(c.id);
    case TlsIo::kFailed:
      if (c.tls->plaintext_http()) {
        // An http:// URL for an https:// port: say so in the client's language, then close.
        HandshakeFailed(c, "a plaintext HTTP request (the client must use https://)");
        c.tls.reset();
        UpdateInterest(c);
        return FailRequest(c, 400, "this port serves HTTPS: use an https:// URL");
      }
      HandshakeFailed(c, c.tls->error());
      return Close(c.id);
  }
}

void EventHttpServer::HandshakeFailed(Connection& c, const std::string& why) {
  if (options_.tls != nullptr) options_.tls->HandshakeFailed(PeerOf(c.fd), why);
}

void EventHttpServer::OnReadable(Connection& c) {
  char buf[kReadChunk];
  if (c.tls != nullptr) {
    const TlsIo io = c.tls->Read(buf, sizeof buf);
    switch (io.kind) {
      case TlsIo::kOk:
        return Parse(c, absl::string_view(buf, io.bytes));
      case TlsIo::kWantRead:
      case TlsIo::kWantWrite:
        return UpdateInterest(c);
      case TlsIo::kClosed:
      case TlsIo::kFailed:
        return Close(c.id);
    }
  }
  const ssize_t n = recv(c.fd, buf, sizeof buf, 0);
  if (n > 0) return Parse(c, absl::string_view(buf, static_cast<size_t>(n)));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  Close(c.id);  // EOF (mid-request or between requests) or an error
}

void EventHttpServer::Parse(Connection& c, absl::string_view data) {
  const bool was_in_request = c.parser.in_request();
  HttpRequestParser::Progress p = c.parser.Feed(data);
  if (!was_in_request && !c.fresh && c.parser.in_request()) c.request_start = absl::Now();
  while (true) {
    switch (p) {
      case HttpRequestParser::Progress::kNeedMore:
        SetDeadline(c, c.parser.in_body()      ? c.body_start + options_.body_timeout
                       : c.parser.in_request() || c.fresh
                           ? c.request_start + options_.header_timeout
                           : c.idle_since + options_.idle_timeout);
        return;
      case HttpRequestParser::Progress::kHeaders:
        c.body_start = absl::Now();
        if (c.parser.expects_continue()) {
          c.out += "HTTP/1.1 100 Continue\r\n\r\n";
          if (!Flush(c)) return;
          UpdateInterest(c);
        }
        p = c.parser.Feed("");
        continue;
      case HttpRequestParser::Progress::kDone:
        return Dispatch(c);
      case HttpRequestParser::Progress::kError:
        return FailRequest(c, c.parser.error().status, c.parser.error().message);
    }
  }
}

void EventHttpServer::Dispatch(Connection& c) {
  HttpRequest request = c.parser.TakeRequest();
  c.fresh = false;
  c.state = Connection::State::kAnswering;
  c.exchange = std::make_shared<HttpExchange>(mailbox_, c.id, request.minor_version,
                                              request.keep_alive);
  UpdateInterest(c);
  SetDeadline(c, absl::InfiniteFuture());
  std::shared_ptr<HttpExchange> exchange = c.exchange;
  handler_(std::move(request), std::move(exchange));
  ServiceExchange(c);  // the handler may have answered already
}

void EventHttpServer::FailRequest(Connection& c, int status, absl::string_view message) {
  c.state = Connection::State::kAnswering;
  c.exchange = std::make_shared<HttpExchange>(mailbox_, c.id, /*minor_version=*/1,
                                              /*keep_alive=*/false);
  c.exchange->Respond(status, "application/json", error_body_(status, message));
  ServiceExchange(c);
}

void EventHttpServer::ServiceExchange(Connection& c) {
  if (c.exchange == nullptr) return;
  HttpExchange::Output output = c.exchange->Drain();
  if (!c.has_output()) {
    c.out.clear();
    c.out_pos = 0;
  }
  if (!output.bytes.empty() && !c.has_output()) c.last_write = absl::Now();
  c.out += output.bytes;
  if (output.complete) {
    c.response_complete = true;
    c.keep_alive = output.keep_alive;
  }
  if (!Flush(c)) return;
  if (c.response_complete && !c.has_output()) return AfterResponse(c);
  UpdateInterest(c);
  SetDeadline(c, c.has_output() ? c.last_write + options_.write_timeout : absl::InfiniteFuture());
}

bool EventHttpServer::Flush(Connection& c) {
  while (c.tls != nullptr && c.has_output()) {
    const TlsIo io = c.tls->Write(c.out.data() + c.out_pos, c.out.size() - c.out_pos);
    if (io.kind == TlsIo::kOk) {
      c.out_pos += io.bytes;
      c.last_write = absl::Now();
      continue;
    }
    if (io.kind == TlsIo::kWantWrite || io.kind == TlsIo::kWantRead) break;
    Close(c.id);
    return false;
  }
  while (c.has_output()) {
    const ssize_t n = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                           MSG_NOSIGNAL);
    if (n > 0) {
      c.out_pos += static_cast<size_t>(n);
      c.last_write = absl::Now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    Close(c.id);
    return false;
  }
  if (!c.has_output()) {
    c.out.clear();
    c.out_pos = 0;
  }
  return true;
}

void EventHttpServer::AfterResponse(Connection& c) {
  c.exchange.reset();
  c.response_complete = false;
  if (!c.keep_alive || stop_.load()) return StartLinger(c);
  c.state = Connection::State::kReading;
  c.idle_since = absl::Now();
  UpdateInterest(c);
  if (c.parser.buffered() == 0) return SetDeadline(c, c.idle_since + options_.idle_timeout);
  // A pipelined request is already buffered: the loop parses it next, not this call (a client
  // pipelining thousands of requests must not make the answers recurse).
  c.request_start = c.idle_since;
  SetDeadline(c, c.request_start + options_.header_timeout);
  reparse_.push_back(c.id);
}

void EventHttpServer::StartLinger(Connection& c) {
  if (c.tls != nullptr) c.tls->Shutdown();  // close_notify, best effort
  shutdown(c.fd, SHUT_WR);
  c.state = Connection::State::kLingering;
  UpdateInterest(c);
  SetDeadline(c, absl::Now() + options_.linger_timeout);
}

void EventHttpServer::Close(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
  if (c.tls != nullptr) c.tls->Shutdown();  // close_notify, best effort
  close(c.fd);
  if (c.exchange != nullptr) c.exchange->MarkGone();
  deadlines_.erase({c.deadline, id});
  connections_.erase(it);
  open_connections_.fetch_sub(1, std::memory_order_relaxed);
}

void EventHttpServer::SetDeadline(Connection& c, absl::Time deadline) {
  if (deadline == c.deadline) return;
  if (c.deadline != absl::InfiniteFuture()) deadlines_.erase({c.deadline, c.id});
  c.deadline = deadline;
  if (deadline != absl::InfiniteFuture()) deadlines_.emplace(deadline, c.id);
}

void EventHttpServer::UpdateInterest(Connection& c) {
  uint32_t want = EPOLLRDHUP;
  if (c.state != Connection::State::kAnswering) want |= EPOLLIN;
  if (c.has_output()) want |= EPOLLOUT;
  if (c.tls != nullptr && c.state != Connection::State::kLingering) {
    if (c.tls->handshake_needs_writable() ||
        (c.state == Connection::State::kReading && c.tls->read_needs_writable())) {
      want |= EPOLLOUT;
    }
    if (c.has_output() && c.tls->write_needs_readable()) want |= EPOLLIN;
  }
  if (want == c.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, c.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = want;
}

void EventHttpServer::ExpireDeadlines(absl::Time now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uint64_t id = deadlines_.begin()->second;
    deadlines_.erase(deadlines_.begin());
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& c = *it->second;
    c.deadline = absl::InfiniteFuture();
    if (c.tls != nullptr && !c.tls->handshake_done()) {
      HandshakeFailed(c, absl::StrCat("not finished within ",
                                      absl::FormatDuration(options_.header_timeout),
                                      " of connecting (the request head's deadline)"));
    }
    Close(id);
  }
}

}  // namespace g4
