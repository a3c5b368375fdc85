#include "coordinator/coordinator_flags.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/flags/flag_set.h"
#include "common/status_macros.h"
#include "proto/internal_tls_flags.h"

namespace g4 {
namespace {

constexpr char kProgram[] = "g4-coordinator";
constexpr char kSynopsis[] = "--model DIR [flags]";
constexpr char kDescription[] =
    "The front door of g4serve: the public gRPC Inference API, the Fleet service the workers "
    "register with, and (with --http-port) the OpenAI-compatible HTTP API. docs/coordinator.md.";

// Declares every flag of the coordinator on `flags`, bound to `f`.
void DeclareFlags(FlagSet& flags, CoordinatorFlags& f) {
  flags.Add("model", &f.model,
            "model directory (config.json, weights, generation_config.json, tokenizer.json, "
            "chat_template.jinja); checked at start")
      .Value("DIR")
      .Required()
      .NonEmpty();
  flags.Add("served-model-name", &f.served_model_name, "model id in the API")
      .Value("NAME")
      .Default("basename of --model");
  flags.Add("tensor-parallel-size", &f.tensor_parallel_size, "ranks (workers) per replica")
      .Range(1, 4096);
  flags.Add("expert-parallel-size", &f.expert_parallel_size,
            "expert-parallel degree for MoE models")
      .Range(1, 4096);
  flags.Add("num-replicas", &f.num_replicas,
            "replicas to form; 0 = as many as registered workers allow")
      .Range(0, 1 << 20);
  flags.Add("host", &f.host, "listen address").Value("HOST").NonEmpty();
  flags.Add("port", &f.port, "gRPC listen port; 0 = pick a free one").Range(0, 65535);
  flags.Add("port-file", &f.port_file, "write the bound gRPC port here once serving")
      .Value("PATH");
  flags.Add("internal-port", &f.internal_port,
            "port of the internal plane (Fleet service and rendezvous store the workers dial; "
            "docs/security.md); 0 = pick a free one, -1 = share --port (local development only)")
      .Range(-1, 65535);
  flags.Add("internal-host", &f.internal_host, "internal plane listen address")
      .Value("HOST")
      .Default("--host");
  flags.Add("internal-port-file", &f.internal_port_file,
            "write the bound internal port here once serving")
      .Value("PATH");
  flags.Add("http-port", &f.http_port,
            "OpenAI-compatible HTTP port; 0 = pick a free one, -1 = no HTTP server")
      .Range(-1, 65535);
  flags.Add("http-port-file", &f.http_port_file, "write the bound HTTP port here once serving")
      .Value("PATH");
  flags.Add("max-num-seqs", &f.max_num_seqs,
            "engine: running sequences per replica; also sizes the KV pools (docs/kv_cache.md)")
      .Range(0, 1 << 20)
      .Default("0 = the engine's, 64");
  flags.Add("max-num-batched-tokens", &f.max_num_batched_tokens, "engine: tokens per step")
      .Range(0, 1 << 30)
      .Default("0 = the engine's, 2048");
  flags.Add("max-model-len", &f.max_model_len, "maximum context in tokens")
      .Range(0, int64_t{1} << 40)
      .Default("0 = the model's max_position_embeddings");
  flags.Add("max-queue", &f.max_queue,
            "engine: waiting requests per replica before RESOURCE_EXHAUSTED")
      .Range(0, 1 << 30)
      .Default("0 = the engine's, 1024");
  flags.Add("block-size", &f.block_size, "engine: KV cache page size in tokens, both pools")
      .Range(0, 1 << 16)
      .Default("0 = the engine's, 16");
  flags.Add("num-global-pages", &f.num_global_pages,
            "engine: pages of the global KV pool")
      .Range(0, int64_t{1} << 40)
      .Default("0 = sized for max-num-seqs sequences of min(max-model-len, 2048) tokens");
  flags.Add("num-sliding-pages", &f.num_sliding_pages,
            "engine: pages of the sliding-window KV pool")
      .Range(0, int64_t{1} << 40)
      .Default("0 = sized like the global pool");
  flags.Add("enable-prefix-caching", &f.enable_prefix_caching,
            "engine: reuse cached prompt prefixes")
      .Default("the engine's, on");
  flags.AddSwitch("no-enable-prefix-caching", "engine: no prefix caching",
                  [&f](bool on) { f.enable_prefix_caching = !on; });
  flags.Add("batch-invariant", &f.batch_invariant,
            "engine: batch-invariant kernels, so that seeded sampling gives the same tokens "
            "under any batching and after a migration (slower decode)");
  flags.Add("metrics-port", &f.metrics_port,
            "Prometheus /metrics port; 0 = pick a free one, -1 = off")
      .Range(-1, 65535);
  flags.Add("metrics-host", &f.metrics_host, "metrics listen address")
      .Value("HOST")
      .Default("--host");
  flags.Add("metrics-prefix", &f.metrics_prefix,
            "metric name prefix (vllm: for vLLM's names)")
      .Value("PREFIX");
  flags.Add("metrics-port-file", &f.metrics_port_file,
            "write the bound metrics port here once serving")
      .Value("PATH");
  flags.Add("capacity-typical-tokens", &f.capacity_typical_tokens,
            "capacity metrics: also count the sequences of this many tokens that fit; 0 = only "
            "the maximum context")
      .Range(0, int64_t{1} << 31);
  flags.Add("collective-timeout", &f.collective_timeout,
            "collective timeout on the workers")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("health-interval", &f.health_interval, "worker health-check period")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("health-timeout", &f.health_timeout, "worker health-check deadline")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("load-timeout", &f.load_timeout, "Worker.Load deadline")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("drain-timeout", &f.drain_timeout,
            "on SIGTERM: fail readiness, take no new requests, let those in flight finish for "
            "at most this long, then exit 0")
      .MinExclusive(absl::ZeroDuration());
  flags.Add("heap-release-interval", &f.heap_release_interval,
            "give the heap's free pages back to the kernel every D (malloc_trim), so the resident "
            "set follows the live heap; 0 = never")
      .Value("D")
      .Min(absl::ZeroDuration());
  flags.Add("migration-limit", &f.migration_limit,
            "times one request may continue on another replica when its replica fails "
            "mid-stream; 0 = never")
      .Range(0, 1 << 20);
  flags.Add("api-key", &f.api_keys,
            "require this key (Authorization: Bearer KEY; gRPC: authorization metadata) on the "
            "public APIs; repeatable; also G4_API_KEY. docs/security.md")
      .Value("KEY")
      .Default("none: the public APIs are open");
  flags.Add("api-key-file", &f.api_key_file,
            "more keys, one per line ('#' comments); re-read when it changes (a file that "
            "cannot be read or holds a bad key or none keeps the keys in force)")
      .Value("PATH");
  flags.Add("api-key-file-refresh-interval", &f.api_key_file_refresh_interval,
            "how often --api-key-file is read again; 0 = at start only")
      .Min(absl::ZeroDuration());
  flags.Add("protect-health-and-metrics", &f.protect_health_and_metrics,
            "with API keys: /health and /metrics need a key too (metrics: HTTP basic auth, the "
            "key as password); off: they stay open for probes and scrapers");
  flags.Add("tls-cert", &f.tls_cert,
            "TLS on the public ports: gRPC (--port) and the OpenAI HTTP port (--http-port, "
            "then HTTPS); the server certificate (PEM, then any intermediates); with "
            "--tls-key; re-read when it changes (not /metrics)")
      .Value("PATH")
      .Default("none: plaintext");
  flags.Add("tls-key", &f.tls_key, "the private key of --tls-cert (PEM)").Value("PATH");
  flags.Add("tls-refresh-interval", &f.tls_refresh_interval,
            "how often --tls-cert and --tls-key are re-read")
      .MinExclusive(absl::ZeroDuration());
  DeclareInternalTlsFlags(
      flags, f.internal_tls,
      {.cert_help = "mutual TLS on the internal plane: this coordinator's certificate (PEM, then "
                    "any intermediates); with --internal-tls-key and --internal-tls-ca; needs "
                    "--internal-port; re-read when it changes. docs/security.md",
       .cert_default = "none: the internal plane is plaintext and unauthenticated",
       .ca_help = "mutual TLS: the CA bundle (PEM) workers' certificates must chain to",
       .peer_flag = "worker-identity",
       .peer_help = "mutual TLS: the DNS subjectAltName a worker's certificate must carry; calls "
                    "to the internal port from any other certificate are PERMISSION_DENIED"});
  flags.AddCustom(
      "worker-address-check", "peer|off",
      "peer: a worker may register (and heartbeat) only the address its call comes from "
      "(its host's IP, or a name resolving to it); off: any address, for networks with NAT "
      "or a proxy between workers and the coordinator. docs/security.md",
      [&f](absl::string_view value) -> absl::Status {
        if (value == "peer" || value == "off") {
          f.check_worker_address = value == "peer";
          return absl::OkStatus();
        }
        return absl::InvalidArgumentError(
            absl::StrCat("expected peer or off, got \"", value, "\""));
      })
      .Default("peer");
}

constexpr FlagSpec<CoordinatorFlags> kSpec = {kProgram, kSynopsis, kDescription, DeclareFlags};

}  // namespace

std::string CoordinatorUsage() { return kSpec.Usage(); }

absl::StatusOr<CoordinatorFlags> ParseCoordinatorFlags(const std::vector<std::string>& args) {
  CoordinatorFlags f;
  G4_RETURN_IF_ERROR(kSpec.Parse(args, &f));
  if (f.help) return f;
  if (!f.metrics_port_file.empty() && f.metrics_port < 0) {
    return absl::InvalidArgumentError("--metrics-port-file: needs --metrics-port");
  }
  if (!f.internal_port_file.empty() && f.internal_port < 0) {
    return absl::InvalidArgumentError("--internal-port-file: needs --internal-port");
  }
  if (!f.internal_host.empty() && f.internal_port < 0) {
    return absl::InvalidArgumentError("--internal-host: needs --internal-port");
  }
  if (f.internal_tls.enabled() && f.internal_port < 0) {
    return absl::InvalidArgumentError(
        "--internal-tls-cert: needs --internal-port (the public port stays plaintext)");
  }
  G4_RETURN_IF_ERROR(CheckInternalTlsOptions(f.internal_tls));
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    return absl::InvalidArgumentError(f.tls_cert.empty() ? "--tls-cert: needed with --tls-key"
                                                         : "--tls-key: needed with --tls-cert");
  }
  if (!f.http_port_file.empty() && f.http_port < 0) {
    return absl::InvalidArgumentError("--http-port-file: needs --http-port");
  }
  return f;
}

}  // namespace g4
