// Command-line flags of g4-coordinator (vLLM-style names), declared on the common FlagSet
// (common/flags/flag_set.h): `--name value` or `--name=value`, underscores accepted for dashes.
#ifndef G4SERVE_COORDINATOR_COORDINATOR_FLAGS_H_
#define G4SERVE_COORDINATOR_COORDINATOR_FLAGS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/internal_tls.h"

namespace g4 {

struct CoordinatorFlags {
  std::string model;              // --model DIR (required)
  std::string served_model_name;  // --served-model-name (default: basename of --model)
  int tensor_parallel_size = 1;
  int expert_parallel_size = 1;
  int num_replicas = 0;  // 0: as many as the workers allow
  std::string host = "127.0.0.1";
  int port = 0;  // 0: pick a free port
  std::string port_file;
  // The internal plane (Fleet service, rendezvous store; docs/security.md): -1 = on --port
  // (local development only: it is then as reachable as the public API), 0 = pick a free port.
  int internal_port = -1;
  std::string internal_host;  // empty: --host
  std::string internal_port_file;
  int http_port = -1;  // OpenAI-compatible HTTP: -1 = off, 0 = pick a free port
  std::string http_port_file;
  int max_num_seqs = 0;            // 0: the engine's default
  int max_num_batched_tokens = 0;  // 0: the engine's default
  int64_t max_model_len = 0;       // 0: the model's max_position_embeddings
  int max_queue = 0;               // 0: the engine's default
  // Paged KV cache (LoadRequest.engine); 0 / unset: the engine's default.
  int block_size = 0;                          // --block-size
  int64_t num_global_pages = 0;                // --num-global-pages
  int64_t num_sliding_pages = 0;               // --num-sliding-pages
  std::optional<bool> enable_prefix_caching;   // --[no-]enable-prefix-caching
  bool batch_invariant = false;                // --batch-invariant (kernels/ops.h)
  // Prometheus metrics (docs/metrics.md): -1 = off, 0 = pick a free port.
  int metrics_port = -1;
  std::string metrics_host;  // empty: --host
  std::string metrics_prefix = "g4serve_";
  std::string metrics_port_file;
  // capacity_sequences{context="typical"} counts sequences of this many tokens (0: not exported).
  int64_t capacity_typical_tokens = 4096;
  absl::Duration collective_timeout = absl::Seconds(30);
  absl::Duration health_interval = absl::Seconds(1);
  absl::Duration health_timeout = absl::Seconds(2);
  absl::Duration load_timeout = absl::Minutes(10);
  // SIGTERM: readiness fails, no new requests, those in flight finish for at most this long.
  absl::Duration drain_timeout = absl::Seconds(30);
  // Free heap pages go back to the kernel this often (common/heap/heap_release.h); 0: never.
  absl::Duration heap_release_interval = absl::Seconds(10);
  int migration_limit = 3;  // times one request may move to another replica (0: never)
  // API keys on the public plane (docs/security.md); with none (and no G4_API_KEY) it is open.
  std::vector<std::string> api_keys;  // --api-key KEY, repeatable
  std::string api_key_file;           // --api-key-file PATH: one key per line
  // How often --api-key-file is read again (a changed file replaces its keys); 0: at start only.
  absl::Duration api_key_file_refresh_interval = absl::Seconds(10);
  bool protect_health_and_metrics = false;  // /health and /metrics need a key too
  // TLS on the public gRPC and HTTP ports (not /metrics; docs/security.md): both files or neither.
  std::string tls_cert;
  std::string tls_key;
  absl::Duration tls_refresh_interval = absl::Seconds(60);
  // Mutual TLS on the internal plane (proto/internal_tls.h, docs/security.md): all three files
  // or none; needs --internal-port. peer_name: the identity worker certificates must carry.
  InternalTlsOptions internal_tls = InternalTlsRequiring(kDefaultWorkerIdentity);
  // Register / Heartbeat only for the address the call comes from
  // (coordinator/fleet/worker_address_check.h): --worker-address-check=peer|off.
  bool check_worker_address = true;
  bool help = false;
};

// InvalidArgument naming the flag on a bad flag. `args` excludes argv[0]. With --help / -h:
// `help` is set and nothing else is checked.
absl::StatusOr<CoordinatorFlags> ParseCoordinatorFlags(const std::vector<std::string>& args);

// The --help text: every flag with its meaning and default.
std::string CoordinatorUsage();

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_COORDINATOR_FLAGS_H_
