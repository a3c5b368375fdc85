// g4-worker: one worker process (one device / CPU rank). Serves the Worker gRPC service,
// registers with the coordinator, and loads what the coordinator tells it to. docs/worker.md.
//
//   g4-worker --coordinator HOST:PORT [--host 127.0.0.1] [--port 0] [--threads N]
//             [--register-timeout 60s] [--heartbeat-interval 2s] [--gloo-interface IFACE]
//             [--drain-timeout 30s]
//             [--metrics-port -1] [--metrics-host ADDR] [--metrics-prefix g4serve_]
//             [--served-model-name NAME] [--replica-group NAME] [--replica-rank N]
//
// --replica-group NAME / --replica-rank N (both optional) are sent in Fleet.Register: workers of
// one group form one replica, rank N being the worker's tensor-parallel rank (0 = leader).
// In Kubernetes (LeaderWorkerSet) they come from the LWS env, e.g.
// --replica-group=$(LWS_GROUP_INDEX) (or the leader address, $(LWS_LEADER_ADDRESS)) and
// --replica-rank=$(LWS_WORKER_INDEX). Without a group, replicas form in registration order.
//
// --heartbeat-interval D (default 2s, 0 disables): after registering, the worker checks every D
// that the coordinator still knows it (Fleet.Heartbeat); a restarted coordinator that does not
// makes the worker tear its replica down and register again. docs/worker.md.
//
// SIGTERM drains (--drain-timeout D, default 30s, 0: no drain): the worker takes no new
// requests, finishes its streams until the coordinator releases its replica or D passes (then
// the streams left end UNAVAILABLE and the coordinator migrates them), and exits 0. SIGINT, or a
// second SIGTERM, stops at once. docs/worker.md.
//
// --metrics-port N serves Prometheus metrics at http://HOST:N/metrics (0 picks a free port, -1,
// the default, disables them) and logs "g4-worker metrics on HOST:PORT". docs/metrics.md.
#include <signal.h>
#include <unistd.h>

#include <cblas.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/service/worker_server.h"

namespace {

constexpr char kUsage[] =
    "usage: g4-worker --coordinator HOST:PORT [--host ADDR] [--port N] [--threads N] "
    "[--register-timeout DURATION] [--heartbeat-interval DURATION] [--gloo-interface IFACE] "
    "[--metrics-port N] "
    "[--metrics-host ADDR] [--metrics-prefix PREFIX] [--served-model-name NAME] "
    "[--replica-group NAME] [--replica-rank N] [--drain-timeout DURATION]\n"
    "  --drain-timeout D     on SIGTERM, finish the streams in flight for at most D before "
    "exiting (default 30s, 0 exits at once)\n"
    "  --heartbeat-interval D  check every D that the coordinator still knows this worker and "
    "register again after a coordinator restart (default 2s, 0 disables)\n"
    "  --replica-group NAME  workers of one group form one replica (Kubernetes: "
    "$(LWS_GROUP_INDEX))\n"
    "  --replica-rank N      this worker's rank in its group, 0 = leader (Kubernetes: "
    "$(LWS_WORKER_INDEX))\n";

// Self-pipe: the signal handler writes the signal number, a watcher thread reads it. (Blocking
// the signals and sigwait()ing does not work here: OpenBLAS starts its threads before main.)
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
}

[[noreturn]] void UsageError(const std::string& message) {
  std::fprintf(stderr, "g4-worker: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  // A peer rank that closed its connection must be an error on the next write (Gloo writes
  // without MSG_NOSIGNAL), not a SIGPIPE that silently kills the worker.
  signal(SIGPIPE, SIG_IGN);
  g4::WorkerServerOptions options;
  int threads = 0;
  absl::Duration drain_timeout = absl::Seconds(30);
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) UsageError(absl::StrCat("unexpected argument: ", arg));
    std::string name = arg, value;
    if (const auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) UsageError(absl::StrCat(name, " needs a value"));
      value = argv[++i];
    }
    if (name == "--coordinator") {
      options.coordinator = value;
    } else if (name == "--host") {
      options.host = value;
    } else if (name == "--port") {
      if (!absl::SimpleAtoi(value, &options.port) || options.port < 0 || options.port > 65535) {
        UsageError(absl::StrCat("--port: expected an integer in [0, 65535], got '", value, "'"));
      }
    } else if (name == "--threads") {
      if (!absl::SimpleAtoi(value, &threads) || threads < 1) {
        UsageError(absl::StrCat("--threads: expected a positive integer, got '", value, "'"));
      }
    } else if (name == "--register-timeout") {
      if (!absl::ParseDuration(value, &options.register_timeout) ||
          options.register_timeout <= absl::ZeroDuration()) {
        UsageError(absl::StrCat("--register-timeout: expected a duration like 60s, got '", value,
                                "'"));
      }
    } else if (name == "--heartbeat-interval") {
      if (!absl::ParseDuration(value, &options.heartbeat_interval) ||
          options.heartbeat_interval < absl::ZeroDuration()) {
        UsageError(absl::StrCat(
            "--heartbeat-interval: expected a duration like 2s (0 disables), got '", value, "'"));
      }
    } else if (name == "--drain-timeout") {
      if (!absl::ParseDuration(value, &drain_timeout) || drain_timeout < absl::ZeroDuration()) {
        UsageError(absl::StrCat("--drain-timeout: expected a duration like 30s (0: none), got '",
                                value, "'"));
      }
    } else if (name == "--gloo-interface") {
      options.gloo_interface = value;
    } else if (name == "--metrics-port") {
      if (!absl::SimpleAtoi(value, &options.metrics_port) || options.metrics_port < -1 ||
          options.metrics_port > 65535) {
        UsageError(absl::StrCat(
            "--metrics-port: expected -1 (disabled) or an integer in [0, 65535], got '", value,
            "'"));
      }
    } else if (name == "--metrics-host") {
      options.metrics_host = value;
    } else if (name == "--metrics-prefix") {
      if (absl::Status s = g4::ValidateMetricsPrefix(value); !s.ok()) {
        UsageError(absl::StrCat("--metrics-prefix: ", s.message()));
      }
      options.metrics_prefix = value;
    } else if (name == "--served-model-name") {
      options.metrics_model_name = value;
    } else if (name == "--replica-group") {
      options.replica_group = value;
    } else if (name == "--replica-rank") {
      if (!absl::SimpleAtoi(value, &options.replica_rank) || options.replica_rank < 0) {
        UsageError(absl::StrCat("--replica-rank: expected a non-negative integer, got '", value,
                                "'"));
      }
    } else {
      UsageError(absl::StrCat("unknown flag ", name));
    }
  }
  if (options.coordinator.empty()) UsageError("--coordinator HOST:PORT is required");
  if (options.host.empty()) UsageError("--host: empty");
  if (options.replica_rank >= 0 && options.replica_group.empty()) {
    UsageError("--replica-rank needs --replica-group");
  }
  if (threads > 0) openblas_set_num_threads(threads);

  if (pipe(g_signal_pipe) != 0) {
    std::perror("g4-worker: pipe");
    return 1;
  }
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  absl::StatusOr<std::unique_ptr<g4::WorkerServer>> server = g4::WorkerServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "g4-worker: %s\n", server.status().ToString().c_str());
    return 1;
  }
  g4::WorkerServer* s = server->get();
  std::fprintf(stderr, "g4-worker listening on %s\n", s->address().c_str());
  if (s->metrics() != nullptr) {
    std::fprintf(stderr, "g4-worker metrics on %s\n", s->metrics()->address().c_str());
  }

  // The first SIGTERM drains on its own thread (then shuts down); SIGINT or another SIGTERM
  // stops at once. A 0 byte (written by main below) only wakes the thread up to end it.
  std::thread signal_thread([s, drain_timeout] {
    std::thread drainer;
    while (true) {
      char c = 0;
      ssize_t n;
      while ((n = read(g_signal_pipe[0], &c, 1)) < 0 && errno == EINTR) {
      }
      if (n <= 0 || (c != SIGTERM && c != SIGINT)) break;
      if (c == SIGTERM && drain_timeout > absl::ZeroDuration() && !drainer.joinable()) {
        std::fprintf(stderr, "g4-worker: SIGTERM, draining (at most %s)\n",
                     absl::FormatDuration(drain_timeout).c_str());
        drainer = std::thread([s, drain_timeout] {
          s->Drain(drain_timeout);
          s->Shutdown();
        });
        continue;
      }
      std::fprintf(stderr, "g4-worker: %s, shutting down\n", c == SIGTERM ? "SIGTERM" : "SIGINT");
      s->CancelDrain();
      s->Shutdown();
      break;
    }
    if (drainer.joinable()) drainer.join();
  });

  absl::StatusOr<std::string> id = s->Register();
  int rc = 0;
  if (id.ok()) {
    std::fprintf(stderr, "g4-worker: registered with %s as %s\n", options.coordinator.c_str(),
                 id->c_str());
    s->StartHeartbeat(*id);
    s->Wait();
  } else if (id.status().code() != absl::StatusCode::kCancelled) {
    std::fprintf(stderr, "g4-worker: %s\n", id.status().ToString().c_str());
    rc = 1;
    s->Shutdown();
  }
  // Wake the watcher if it is still waiting (registration failed, or a drain ended the server),
  // then join it.
  {
    const char c = 0;
    [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
  }
  signal_thread.join();
  server->reset();
  return rc;
}
