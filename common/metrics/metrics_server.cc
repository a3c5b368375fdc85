#include "common/metrics/metrics_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace g4 {

bool IsMetricsLabelName(absl::string_view name) {
  if (name.empty() || absl::StartsWith(name, "__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
          (i > 0 && c >= '0' && c <= '9'))) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateMetricsPrefix(absl::string_view prefix) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics prefix \"", prefix, "\": ", why,
                     " (expected [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. \"g4serve_\" or \"vllm:\")"));
  };
  if (prefix.empty()) return absl::OkStatus();
  if (absl::StartsWith(prefix, "__")) return bad("names starting with \"__\" are reserved");
  for (size_t i = 0; i < prefix.size(); ++i) {
    const char c = prefix[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return bad(absl::StrCat("invalid character '", std::string(1, c), "'"));
  }
  return absl::OkStatus();
}

std::string SerializeMetricsText(const prometheus::Collectable& collectable) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, collectable.Collect());
  return out.str();
}

absl::Status SplitHostPort(absl::string_view address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("expected HOST:PORT, got \"", address, "\""));
  }
  absl::string_view h = address.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  int p = 0;
  if (h.empty() || !absl::SimpleAtoi(address.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("expected HOST:PORT, got \"", address, "\""));
  }
  *host = std::string(h);
  *port = p;
  return absl::OkStatus();
}

// Runs the scrape callbacks when collected. Registered with the Exposer before the registry, so
// (the Exposer collects in registration order) the callbacks run before the registry is read.
class MetricsServer::CallbackCollectable final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, callback] : callbacks_) callback();
    return {};
  }
  int Add(std::function<void()> callback) {
    absl::MutexLock lock(&mu_);
    callbacks_.emplace(next_id_, std::move(callback));
    return next_id_++;
  }
  void Remove(int id) {
    absl::MutexLock lock(&mu_);
    callbacks_.erase(id);
  }

 private:
  mutable absl::Mutex mu_;
  std::map<int, std::function<void()>> callbacks_ ABSL_GUARDED_BY(mu_);
  int next_id_ ABSL_GUARDED_BY(mu_) = 0;
};

namespace {

// civetweb only says "null context when constructing CivetServer. Possible problem binding to
// port": ask the OS why, with a bind of our own (e.g. "Address already in use").
std::string BindFailureReason(const std::string& host, int port) {
  addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* addresses = nullptr;
  if (const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &addresses);
      rc != 0) {
    return gai_strerror(rc);
  }
  std::string reason = "the address cannot be bound";
  for (addrinfo* a = addresses; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));  // as civetweb does
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0) reason = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(addresses);
  return reason;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& host, int port, std::shared_ptr<prometheus::Registry> registry) {
  if (host.empty()) return absl::InvalidArgumentError("metrics host: empty");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics port must be in [0, 65535], got ", port));
  }
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = registry != nullptr ? std::move(registry)
                                          : std::make_shared<prometheus::Registry>();
  server->callbacks_ = std::make_shared<CallbackCollectable>();
  server->host_ = host;
  const bool v6 = host.find(':') != std::string::npos;
  const std::string bind = v6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(bind, /*num_threads=*/2);
    server->exposer_->RegisterCollectable(server->callbacks_);
    server->exposer_->RegisterCollectable(server->registry_);
    const std::vector<int> ports = server->exposer_->GetListeningPorts();
    if (ports.empty() || ports.front() <= 0) {
      return absl::UnavailableError(absl::StrCat("metrics server on ", bind, ": no bound port"));
    }
    server->port_ = ports.front();
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("metrics server: cannot listen on ", bind, ": ",
                                               BindFailureReason(host, port)));
  }
  return server;
}

MetricsServer::~MetricsServer() { exposer_.reset(); }

void MetricsServer::RequireBasicAuth(
    std::function<bool(const std::string& user, const std::string& password)> check) {
  exposer_->RegisterAuth(std::move(check), "g4serve");
}

std::string MetricsServer::address() const {
  return host_.find(':') != std::string::npos ? absl::StrCat("[", host_, "]:", port_)
                                              : absl::StrCat(host_, ":", port_);
}

int MetricsServer::AddScrapeCallback(std::function<void()> callback) {
  return callbacks_->Add(std::move(callback));
}

void MetricsServer::RemoveScrapeCallback(int id) { callbacks_->Remove(id); }

}  // namespace g4
