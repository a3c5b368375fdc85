#include "worker/service/worker_flags.h"

#include "absl/status/status.h"
#include "common/flags/flag_set.h"
#include "common/metrics/metrics_server.h"
#include "common/status_macros.h"
#include "proto/internal_tls_flags.h"

namespace g4 {
namespace {

constexpr char kProgram[] = "g4-worker";
constexpr char kSynopsis[] = "--coordinator HOST:PORT [flags]";
constexpr char kDescription[] =
    "One worker process (one device / CPU rank): serves the Worker gRPC service, registers with "
    "the coordinator and loads what the coordinator tells it to. docs/worker.md.";

void DeclareFlags(FlagSet& flags, WorkerFlags& f) {
  WorkerServerOptions& o = f.server;
  flags.Add("coordinator", &o.coordinator, "the coordinator's gRPC address (Fleet service)")
      .Value("HOST:PORT")
      .Required()
      .NonEmpty();
  flags.Add("host", &o.host,
            "address to bind, to advertise to the coordinator, and for this rank's Gloo "
            "endpoints (the pod IP / hostname for multi-machine replicas)")
      .Value("ADDR")
      .NonEmpty();
  flags.Add("port", &o.port, "gRPC listen port; 0 = pick a free one (logged and advertised)")
      .Range(0, 65535);
  flags.Add("threads", &f.threads, "OpenBLAS threads; 0 = OpenBLAS's default (all cores)")
      .Range(0, 4096);
  flags.Add("register-timeout", &o.register_timeout,
            "how long to retry Fleet.Register (backoff 100 ms to 2 s) before exiting 1")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("heartbeat-interval", &o.heartbeat_interval,
            "check every D that the coordinator still knows this worker and register again "
            "after a coordinator restart; 0 disables")
      .Value("D")
      .Min(absl::ZeroDuration());
  flags.Add("drain-timeout", &f.drain_timeout,
            "on SIGTERM: take no new requests and finish the streams in flight for at most D "
            "(until the coordinator releases the replica), then exit 0; 0 = exit at once. "
            "SIGINT or a second SIGTERM stops at once")
      .Value("D")
      .Min(absl::ZeroDuration());
  flags.Add("heap-release-interval", &f.heap_release_interval,
            "give the heap's free pages back to the kernel every D (malloc_trim), so the resident "
            "set follows the live heap; 0 = never")
      .Value("D")
      .Min(absl::ZeroDuration());
  flags.Add("gloo-interface", &o.gloo_interface,
            "listen for Gloo on this network interface instead of --host")
      .Value("IFACE");
  flags.Add("metrics-port", &o.metrics_port,
            "Prometheus /metrics port; 0 = pick a free one (logged as \"metrics on HOST:PORT\"), "
            "-1 = off")
      .Range(-1, 65535);
  flags.Add("metrics-host", &o.metrics_host, "metrics listen address")
      .Value("ADDR")
      .Default("--host");
  flags.Add("metrics-prefix", &o.metrics_prefix, "metric name prefix (vllm: for vLLM's names)")
      .Value("PREFIX")
      .Check([&o] { return ValidateMetricsPrefix(o.metrics_prefix); });
  flags.Add("model-root", &o.model_root,
            "Load takes only model directories inside DIR (PERMISSION_DENIED otherwise, before "
            "the file system is read; docs/security.md)")
      .Value("DIR")
      .Default("any path");
  flags.Add("served-model-name", &o.metrics_model_name, "the model_name label of the metrics")
      .Value("NAME")
      .Default("the loaded model directory's base name");
  flags.Add("replica-group", &o.replica_group,
            "workers of one group form one replica (Kubernetes: $(LWS_GROUP_INDEX))")
      .Value("NAME");
  flags.Add("replica-rank", &o.replica_rank,
            "this worker's rank in its group, 0 = leader; needs --replica-group (Kubernetes: "
            "$(LWS_WORKER_INDEX)); -1 = registration order")
      .Range(-1, 4095);
  DeclareInternalTlsFlags(
      flags, o.internal_tls,
      {.cert_help = "mutual TLS on the internal plane: this worker's certificate (PEM, then any "
                    "intermediates); with --internal-tls-key and --internal-tls-ca; re-read "
                    "when it changes. docs/security.md",
       .cert_default = "none: the Worker service and the coordinator channel are plaintext",
       .ca_help = "mutual TLS: the CA bundle (PEM) the coordinator's certificate must chain to",
       .peer_flag = "coordinator-identity",
       .peer_help = "mutual TLS: the DNS subjectAltName the coordinator's certificate must "
                    "carry; Worker calls from any other certificate are PERMISSION_DENIED"});
}

constexpr FlagSpec<WorkerFlags> kSpec = {kProgram, kSynopsis, kDescription, DeclareFlags};

}  // namespace

std::string WorkerUsage() { return kSpec.Usage(); }

absl::StatusOr<WorkerFlags> ParseWorkerFlags(const std::vector<std::string>& args) {
  WorkerFlags f;
  G4_RETURN_IF_ERROR(kSpec.Parse(args, &f));
  if (f.help) return f;
  G4_RETURN_IF_ERROR(CheckInternalTlsOptions(f.server.internal_tls));
  if (f.server.replica_rank >= 0 && f.server.replica_group.empty()) {
    return absl::InvalidArgumentError("--replica-rank needs --replica-group");
  }
  return f;
}

}  // namespace g4
