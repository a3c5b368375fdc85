// g4-worker: one worker process (one device / CPU rank). Serves the Worker gRPC service,
// registers with the coordinator, and loads what the coordinator tells it to. docs/worker.md;
// the flags are in worker_flags.cc (`g4-worker --help`).
//
// --replica-group / --replica-rank are sent in Fleet.Register: workers of one group form one
// replica, rank N being the worker's tensor-parallel rank (0 = leader). In Kubernetes
// (LeaderWorkerSet) they come from the LWS env. --heartbeat-interval: after registering, the
// worker checks that the coordinator still knows it and registers again after a restart.
//
// SIGTERM drains (--drain-timeout D, 0: no drain): the worker takes no new requests, finishes its
// streams until the coordinator releases its replica or D passes (then the streams left end
// UNAVAILABLE and the coordinator migrates them), and exits 0. SIGINT, or a second SIGTERM, stops
// at once.
#include <signal.h>
#include <unistd.h>

#include <cblas.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/flags/flag_set.h"
#include "common/heap/heap_release.h"
#include "worker/service/worker_flags.h"
#include "worker/service/worker_server.h"

namespace {

// Self-pipe: the signal handler writes the signal number, a watcher thread reads it. (Blocking
// the signals and sigwait()ing does not work here: OpenBLAS starts its threads before main.)
int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] ssize_t n = write(g_signal_pipe[1], &c, 1);
}

}  // namespace

int main(int argc, char** argv) {
  // A peer rank that closed its connection must be an error on the next write (Gloo writes
  // without MSG_NOSIGNAL), not a SIGPIPE that silently kills the worker.
  signal(SIGPIPE, SIG_IGN);
  // Buffers of 1 MiB or more are mapped, and unmapped when freed. The CPU attention's buffers grow
  // with the context and are freed and reallocated as it grows (kernels/cpu/
  // attention_workspace.h); glibc's default (a threshold that rises to 32 MiB after the first
  // large free) carved them from the heap instead, where each freed one stayed resident next to
  // its successor: at 65 536 tokens the worker's RSS grew 1.3x what the plan counts; with this,
  // within 3 % (docs/performance.md).
  g4::SetMmapThreshold(size_t{1} << 20);
  g4::LimitMallocArenas();
  absl::StatusOr<g4::WorkerFlags> flags =
      g4::ParseWorkerFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) return g4::FlagError("g4-worker", flags.status());
  if (flags->help) return g4::PrintUsage(g4::WorkerUsage());
  const g4::WorkerServerOptions& options = flags->server;
  const int threads = flags->threads;
  const absl::Duration drain_timeout = flags->drain_timeout;
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
  g4::HeapReleaser heap_releaser(flags->heap_release_interval);
  const g4::InternalTlsOptions& tls = options.internal_tls;
  if (tls.enabled()) {
    std::fprintf(stderr,
                 "g4-worker: internal plane: mutual TLS (CA %s; the coordinator must be %s)\n",
                 tls.ca_file.c_str(), tls.peer_name.c_str());
  } else {
    // Loud on purpose: who can reach this port can call Load/Generate (docs/security.md).
    std::fprintf(stderr,
                 "g4-worker: WARNING: the Worker service on %s and the channel to the "
                 "coordinator are unauthenticated and unencrypted (no --internal-tls-cert); "
                 "local development only (docs/security.md)\n",
                 s->address().c_str());
  }
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
