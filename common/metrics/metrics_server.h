// Prometheus exposition for one process: a shared prometheus::Registry and an HTTP endpoint
// (prometheus-cpp's embedded civetweb Exposer) serving it at /metrics. docs/metrics.md.
//
// Thread-safe.
#ifndef G4SERVE_COMMON_METRICS_METRICS_SERVER_H_
#define G4SERVE_COMMON_METRICS_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace g4 {

// The prefix every g4serve metric name starts with unless configured otherwise. An underscore,
// not vLLM's colon: Prometheus reserves colons for recording rules and `promtool check metrics`
// rejects them. Deployers who want vLLM's exact names pass "vllm:" (docs/metrics.md).
inline constexpr char kDefaultMetricsPrefix[] = "g4serve_";

// OK when `prefix` is empty or matches [a-zA-Z_:][a-zA-Z0-9_:]* without a leading "__"
// (Prometheus' metric name syntax); INVALID_ARGUMENT naming the prefix otherwise.
absl::Status ValidateMetricsPrefix(absl::string_view prefix);

// True when `name` is a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__").
bool IsMetricsLabelName(absl::string_view name);

// The Prometheus text exposition (format 0.0.4) of everything `collectable` holds.
std::string SerializeMetricsText(const prometheus::Collectable& collectable);

// Splits "host:port" / "[v6]:port"; INVALID_ARGUMENT when malformed or the port is outside
// [0, 65535].
absl::Status SplitHostPort(absl::string_view address, std::string* host, int* port);

class MetricsServer {
 public:
  // Binds host:port (port 0: any free port, see port()) and serves `registry` at /metrics; a
  // null `registry` gets a fresh one. Errors: INVALID_ARGUMENT for an empty host or a port
  // outside [0, 65535]; UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& host, int port,
      std::shared_ptr<prometheus::Registry> registry = nullptr);
  ~MetricsServer();  // stops serving; blocks until in-flight scrapes end

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  const std::string& host() const { return host_; }
  // The bound port (the picked one when started with port 0).
  int port() const { return port_; }
  // "host:port", brackets around IPv6 literals.
  std::string address() const;

  // Runs `callback` at the start of every scrape, before the registry is collected (to refresh
  // gauges such as resident memory). Runs on the HTTP server's threads; must not block long and
  // must stay valid until this server is destroyed. Returns an id for RemoveScrapeCallback.
  int AddScrapeCallback(std::function<void()> callback);

  // From now on a scrape needs HTTP basic auth that `check(user, password)` accepts (401
  // otherwise); the coordinator checks the password against its API keys (docs/security.md).
  // Runs on the HTTP server's threads.
  void RequireBasicAuth(std::function<bool(const std::string& user, const std::string& password)>
                            check);
  void RemoveScrapeCallback(int id);

 private:
  class CallbackCollectable;

  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<CallbackCollectable> callbacks_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string host_;
  int port_ = 0;
};

}  // namespace g4

#endif  // G4SERVE_COMMON_METRICS_METRICS_SERVER_H_
