// Command-line flags of g4-worker (docs/worker.md), declared on the common FlagSet
// (common/flags/flag_set.h).
#ifndef G4SERVE_WORKER_SERVICE_WORKER_FLAGS_H_
#define G4SERVE_WORKER_SERVICE_WORKER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "worker/service/worker_server.h"

namespace g4 {

struct WorkerFlags {
  WorkerServerOptions server;
  int threads = 0;  // OpenBLAS threads; 0: OpenBLAS's default
  // SIGTERM: finish the streams in flight for at most this long, then exit; 0: exit at once.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Free heap pages go back to the kernel this often (common/heap/heap_release.h); 0: never.
  absl::Duration heap_release_interval = absl::Seconds(10);
  bool help = false;
};

// InvalidArgument naming the flag on a bad flag. `args` excludes argv[0]. With --help / -h:
// `help` is set and nothing else is checked.
absl::StatusOr<WorkerFlags> ParseWorkerFlags(const std::vector<std::string>& args);

// The --help text: every flag with its meaning and default.
std::string WorkerUsage();

}  // namespace g4

#endif  // G4SERVE_WORKER_SERVICE_WORKER_FLAGS_H_
