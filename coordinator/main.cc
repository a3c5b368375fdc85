// g4-coordinator: the front door. One gRPC server serves the public Inference API, the Fleet
// service for workers, grpc.health.v1 (SERVING while at least one replica is READY) and server
// reflection; with --http-port, an OpenAI-compatible HTTP server shares the same generation path.
// See docs/coordinator.md and docs/api.md.
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags/flag_set.h"
#include "common/generation_config.h"
#include "common/heap/heap_release.h"
#include "common/metrics/capacity_metrics.h"
#include "common/metrics/coordinator_metrics.h"
#include "common/metrics/metrics_server.h"
#include "common/model_config.h"
#include "coordinator/api/inference_service.h"
#include "coordinator/api/reflection_v1_service.h"
#include "coordinator/api/request_limits.h"
#include "coordinator/api/text_codec.h"
#include "coordinator/auth/api_key_file_watcher.h"
#include "coordinator/auth/api_keys.h"
#include "coordinator/coordinator_flags.h"
#include "coordinator/drain.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/fleet/fleet_service.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/http/http_server.h"
#include "coordinator/metrics/capacity_tracker.h"
#include "coordinator/metrics/fleet_metrics.h"
#include "coordinator/router/router.h"
#include "coordinator/startup_checks.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "proto/grpc_listen.h"

namespace g4 {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

void Log(const std::string& line) { std::cerr << "g4-coordinator: " << line << std::endl; }

int Main(int argc, char** argv) {
  // A client or worker that closed its connection is an error on the next write, never a
  // SIGPIPE that kills the coordinator.
  signal(SIGPIPE, SIG_IGN);
  LimitMallocArenas();  // before any thread (common/heap/heap_release.h)
  absl::StatusOr<CoordinatorFlags> flags =
      ParseCoordinatorFlags(std::vector<std::string>(argv + 1, argv + argc));
  if (!flags.ok()) return FlagError("g4-coordinator", flags.status());
  if (flags->help) return PrintUsage(CoordinatorUsage());
  const std::string model_dir = flags->model;
  absl::StatusOr<std::string> config_text = ReadFile(model_dir + "/config.json");
  if (!config_text.ok()) {
    Log(std::string(config_text.status().message()));
    return 1;
  }
  absl::StatusOr<ModelConfig> config =
      ParseModelConfig(*config_text, model_dir + "/config.json");
  if (!config.ok()) {
    Log(config.status().ToString());
    return 1;
  }
  GenerationConfig generation_config;
  if (absl::StatusOr<std::string> text = ReadFile(model_dir + "/generation_config.json");
      text.ok()) {
    absl::StatusOr<GenerationConfig> g =
        ParseGenerationConfig(*text, model_dir + "/generation_config.json");
    if (!g.ok()) {
      Log(g.status().ToString());
      return 1;
    }
    generation_config = *g;
  }
  // The weights the workers will load: their absence or a mismatch with config.json stops the
  // coordinator now, not after workers register (startup_checks.h).
  if (absl::Status s = CheckCheckpoint(model_dir, *config); !s.ok()) {
    Log(absl::StrCat("--model: ", s.message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<HfTextCodec>> codec = HfTextCodec::LoadFromModelDir(model_dir);
  if (!codec.ok()) {
    Log(codec.status().ToString());
    return 1;
  }
  std::string model_id = flags->served_model_name;
  if (model_id.empty()) {
    model_id = std::filesystem::path(model_dir).lexically_normal().filename().string();
    if (model_id.empty()) {
      model_id = std::filesystem::path(model_dir).lexically_normal().parent_path().filename();
    }
  }

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  FleetOptions fleet_options;
  fleet_options.model_dir = model_dir;
  fleet_options.model_name = model_id;
  fleet_options.model_config = *config;
  fleet_options.tensor_parallel_size = flags->tensor_parallel_size;
  fleet_options.expert_parallel_size = flags->expert_parallel_size;
  fleet_options.num_replicas = flags->num_replicas;
  fleet_options.engine.set_max_num_seqs(flags->max_num_seqs);
  fleet_options.engine.set_max_num_batched_tokens(flags->max_num_batched_tokens);
  fleet_options.engine.set_max_model_len(flags->max_model_len);
  fleet_options.engine.set_max_queue(flags->max_queue);
  fleet_options.engine.set_block_size(flags->block_size);
  fleet_options.engine.set_num_global_pages(flags->num_global_pages);
  fleet_options.engine.set_num_sliding_pages(flags->num_sliding_pages);
  if (flags->enable_prefix_caching.has_value()) {
    fleet_options.engine.set_enable_prefix_caching(*flags->enable_prefix_caching);
  }
  fleet_options.engine.set_batch_invariant(flags->batch_invariant);
  fleet_options.collective_timeout = flags->collective_timeout;
  fleet_options.load_timeout = flags->load_timeout;
  fleet_options.health_interval = flags->health_interval;
  fleet_options.health_timeout = flags->health_timeout;
  // A plan that cannot work on any devices (degrees that do not divide the model, a context
  // beyond it) stops the coordinator now; device memory is checked once workers register.
  if (absl::Status s = CheckPlanShape(fleet_options); !s.ok()) {
    Log(std::string(s.message()));
    return 1;
  }

  // API keys (docs/security.md): --api-key, --api-key-file and G4_API_KEY together. Never
  // logged: only how many there are.
  std::vector<std::string> fixed_keys = flags->api_keys;  // all but the file's
  if (const char* env = std::getenv(kApiKeyEnvVar); env != nullptr && *env != '\0') {
    fixed_keys.emplace_back(env);
  }
  std::vector<std::string> key_list = fixed_keys;
  std::string key_file_text;
  if (!flags->api_key_file.empty()) {
    absl::StatusOr<std::string> text = ReadFile(flags->api_key_file);
    absl::StatusOr<std::vector<std::string>> from_file =
        ApiKeys::ReadKeyFile(flags->api_key_file);
    if (!from_file.ok()) {
      Log(std::string(from_file.status().message()));
      return 1;
    }
    if (text.ok()) key_file_text = *std::move(text);
    key_list.insert(key_list.end(), from_file->begin(), from_file->end());
  }
  absl::StatusOr<ApiKeys> api_keys = ApiKeys::Create(key_list, "--api-key");
  if (!api_keys.ok()) {
    Log(std::string(api_keys.status().message()));
    return 1;
  }
  if (flags->protect_health_and_metrics && !api_keys->enabled()) {
    Log("--protect-health-and-metrics: needs an API key (--api-key, --api-key-file or "
        "G4_API_KEY)");
    return 1;
  }
  // A changed key file replaces its keys without a restart (docs/security.md).
  std::unique_ptr<ApiKeyFileWatcher> key_file_watcher;
  if (!flags->api_key_file.empty() &&
      flags->api_key_file_refresh_interval > absl::ZeroDuration()) {
    key_file_watcher = std::make_unique<ApiKeyFileWatcher>(
        flags->api_key_file, key_file_text, fixed_keys, &*api_keys,
        flags->api_key_file_refresh_interval, [](const std::string& line) { Log(line); });
  }

  // Metrics first: the fleet's health loop and the generation path report into them.
  std::unique_ptr<MetricsServer> metrics_server;
  std::unique_ptr<CoordinatorMetrics> metrics;
  std::unique_ptr<FleetMetrics> fleet_metrics;
  std::unique_ptr<CapacityMetrics> capacity_metrics;
  std::unique_ptr<CapacityTracker> capacity;
  if (flags->metrics_port >= 0) {
    const std::string metrics_host =
        flags->metrics_host.empty() ? flags->host : flags->metrics_host;
    absl::StatusOr<std::unique_ptr<MetricsServer>> ms =
        MetricsServer::Start(metrics_host, flags->metrics_port);
    if (!ms.ok()) {
      Log(absl::StrCat("--metrics-port: ", ms.status().message()));
      return 1;
    }
    metrics_server = *std::move(ms);
    if (flags->protect_health_and_metrics) {
      metrics_server->RequireBasicAuth(
          [keys = &*api_keys](const std::string&, const std::string& password) {
            return keys->Identify(password).has_value();
          });
    }
    CoordinatorMetricsOptions mo;
    mo.prefix = flags->metrics_prefix;
    mo.model_name = model_id;
    mo.max_model_len = flags->max_model_len > 0 ? flags->max_model_len
                                                : config->max_position_embeddings;
    absl::StatusOr<std::unique_ptr<CoordinatorMetrics>> m =
        CoordinatorMetrics::Create(*metrics_server->registry(), mo);
    if (!m.ok()) {
      Log(absl::StrCat("--metrics-prefix: ", m.status().ToString()));
      return 1;
    }
    metrics = *std::move(m);
    std::map<std::string, std::string> cache_info = {
        {"block_size", absl::StrCat(flags->block_size > 0 ? flags->block_size : 16)},
        {"cache_dtype", "float32"},
        {"enable_prefix_caching",
         flags->enable_prefix_caching.value_or(true) ? "True" : "False"},
        {"tp_size", absl::StrCat(flags->tensor_parallel_size)},
    };
    metrics->SetCacheConfigInfo(cache_info);
    fleet_metrics = std::make_unique<FleetMetrics>(metrics.get());
    absl::StatusOr<std::unique_ptr<CapacityMetrics>> cm =
        CapacityMetrics::Create(*metrics_server->registry(), {mo.prefix, model_id});
    if (!cm.ok()) {
      Log(absl::StrCat("--metrics-prefix: ", cm.status().ToString()));
      return 1;
    }
    capacity_metrics = *std::move(cm);
    capacity = std::make_unique<CapacityTracker>(
        capacity_metrics.get(),
        CapacityTrackerOptions{config->sliding_window, flags->capacity_typical_tokens});
    fleet_options.health_observer = [fm = fleet_metrics.get(), ct = capacity.get()](
                                        const std::vector<WorkerHealth>& round) {
      fm->Observe(round);
      ct->ObserveHealth(round);
    };
    if (!flags->metrics_port_file.empty()) {
      absl::Status s = WritePortFile(flags->metrics_port_file, metrics_server->port());
      if (!s.ok()) {
        Log(s.ToString());
        return 1;
      }
    }
    Log(absl::StrCat("metrics on ", metrics_server->address()));
  }

  // Mutual TLS on the internal plane (docs/security.md); the flags are checked already.
  absl::StatusOr<std::unique_ptr<InternalTls>> internal_tls =
      InternalTls::Create(flags->internal_tls);
  if (!internal_tls.ok()) {
    Log(std::string(internal_tls.status().message()));
    return 1;
  }
  fleet_options.internal_tls = *std::move(internal_tls);

  KeyValueStoreServer store;
  FleetManager fleet(fleet_options, &store);
  Router router(&fleet);
  // Prompts tokenize off the serving threads, one at a time per two cores, at a lower priority
  // than relaying tokens (coordinator/api/tokenization_pool.h).
  TokenizationPoolOptions tokenization;
  tokenization.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / 2);
  TokenizationPool tokenization_pool(tokenization);
  InferenceOptions inference_options;
  inference_options.model_id = model_id;
  inference_options.vocab_size = config->vocab_size;
  inference_options.generation_config = generation_config;
  inference_options.metrics = metrics.get();
  inference_options.tokenization_pool = &tokenization_pool;
  inference_options.migration_limit = flags->migration_limit;
  inference_options.stall_limit = flags->collective_timeout;
  inference_options.progress_grace = flags->health_timeout;
  InferenceServiceImpl inference(inference_options, codec->get(), &fleet, &router);
  inference.SetApiKeys(&*api_keys);
  FleetServiceImpl fleet_service(&fleet, &store, flags->check_worker_address);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::string host = flags->host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  // From what a request for the longest context can need (docs/limits.md).
  const int64_t limit_context =
      flags->max_model_len > 0 ? flags->max_model_len : config->max_position_embeddings;
  builder.SetMaxReceiveMessageSize(static_cast<int>(GrpcMaxReceiveBytes(
      limit_context, *codec != nullptr ? (*codec)->MaxInputBytesPerToken() : 0,
      /*has_tokenizer=*/*codec != nullptr)));
  // Long silent prefills: keep connections alive, allow client pings every 10 s.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.RegisterService(&inference);
  // The internal plane (docs/security.md): on its own port with --internal-port, which deploy/
  // keeps off the public Service; else on the public port, for local development only.
  const bool split_planes = flags->internal_port >= 0;
  if (!split_planes) builder.RegisterService(&fleet_service);
  ReflectionV1Service reflection_v1;  // v1 next to the plugin's v1alpha
  builder.RegisterService(&reflection_v1);
  // TLS on the public ports (--tls-cert, docs/security.md): one certificate for gRPC and HTTP.
  std::shared_ptr<grpc::ServerCredentials> public_credentials;
  std::unique_ptr<HttpTlsContext> http_tls;
  if (!flags->tls_cert.empty() || !flags->tls_key.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        PublicTlsServerCredentials(flags->tls_cert, flags->tls_key, flags->tls_refresh_interval);
    if (!tls.ok()) return FlagError("g4-coordinator", tls.status());
    public_credentials = *std::move(tls);
    if (flags->http_port >= 0) {
      absl::StatusOr<std::unique_ptr<HttpTlsContext>> https = HttpTlsContext::Create(
          {.cert_file = flags->tls_cert,
           .key_file = flags->tls_key,
           .refresh_interval = flags->tls_refresh_interval},
          [](const std::string& line) { Log(line); });
      if (!https.ok()) return FlagError("g4-coordinator", https.status());
      http_tls = *std::move(https);
    }
  }
  // A port in use is an error (one line, exit 1), never shared (SO_REUSEPORT off).
  absl::StatusOr<StartedGrpcServer> started =
      StartGrpcServer(builder, absl::StrCat(host, ":", flags->port), public_credentials);
  if (!started.ok()) {
    Log(absl::StrCat("--port: ", started.status().message()));
    return 1;
  }
  std::unique_ptr<grpc::Server> server = std::move(started->server);
  const int port = started->port;
  std::unique_ptr<grpc::Server> internal_server;
  std::string internal_address = absl::StrCat(host, ":", port);
  if (split_planes) {
    std::string internal_host = flags->internal_host.empty() ? flags->host : flags->internal_host;
    if (internal_host.find(':') != std::string::npos && internal_host.front() != '[') {
      internal_host = "[" + internal_host + "]";
    }
    grpc::ServerBuilder internal_builder;
    // Store values (Gloo's rendezvous) travel here: the same bound as the public plane.
    internal_builder.SetMaxReceiveMessageSize(static_cast<int>(GrpcMaxReceiveBytes(
        limit_context, *codec != nullptr ? (*codec)->MaxInputBytesPerToken() : 0,
        /*has_tokenizer=*/*codec != nullptr)));
    internal_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60000);
    internal_builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    internal_builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                                        10000);
    internal_builder.RegisterService(&fleet_service);
    absl::StatusOr<StartedGrpcServer> internal = StartGrpcServer(
        internal_builder, absl::StrCat(internal_host, ":", flags->internal_port),
        fleet_options.internal_tls->ServerCredentials());
    absl::Status s = internal.status();
    if (internal.ok()) {
      internal_server = std::move(internal->server);
      internal_address = absl::StrCat(internal_host, ":", internal->port);
      if (!flags->internal_port_file.empty()) {
        s = WritePortFile(flags->internal_port_file, internal->port);
      }
    }
    if (!s.ok()) {
      Log(absl::StrCat(internal.ok() ? "--internal-port-file: " : "--internal-port: ",
                       s.message()));
      if (internal_server != nullptr) internal_server->Shutdown();
      server->Shutdown();
      return 1;
    }
  }
  reflection_v1.SetV1AlphaChannel(server->InProcessChannel(grpc::ChannelArguments()));
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  health->SetServingStatus(false);
  // Replica formation and state changes: readiness and the replicas_ready/_total gauges.
  // The plan as an info metric, each replica's state (replica_state) and capacity
  // (docs/metrics.md).
  auto publish_fleet = [&fleet, &flags, m = metrics.get(), cm = capacity_metrics.get(),
                        ct = capacity.get()] {
    if (m != nullptr) {
      m->SetReplicas(fleet.ReadyReplicas(), fleet.TotalReplicas());
      m->SetReplicaStates(ReplicaStateLabelsOf(fleet.Replicas()));
    }
    if (cm == nullptr) return;
    cm->SetPlanInfo({{"tensor_parallel_size", absl::StrCat(flags->tensor_parallel_size)},
                     {"expert_parallel_size", absl::StrCat(flags->expert_parallel_size)},
                     {"replicas", absl::StrCat(fleet.TotalReplicas())},
                     {"max_context", absl::StrCat(fleet.MaxContext())}});
    ct->ObserveReplicas(fleet.Replicas());
  };
  GenerationService* generation = inference.generation();
  fleet.SetStateListener([&fleet, health, generation, publish_fleet] {
    health->SetServingStatus(fleet.ReadyReplicas() > 0 && !generation->draining());
    publish_fleet();
  });
  if (metrics != nullptr) {
    fleet.SetRecoveryListener(
        [m = metrics.get()](int, bool reformed) { m->ReplicaRecovered(reformed); });
  }
  publish_fleet();
  fleet.Start();

  if (!flags->port_file.empty()) {
    absl::Status s = WritePortFile(flags->port_file, port);
    if (!s.ok()) {
      Log(s.ToString());
      server->Shutdown();
      if (internal_server != nullptr) internal_server->Shutdown();
      fleet.Shutdown();
      return 1;
    }
  }
  std::unique_ptr<HttpServer> http;
  int http_port = -1;
  if (flags->http_port >= 0) {
    HttpServerOptions http_options;
    http_options.host = flags->host;
    http_options.port = flags->http_port;
    http_options.api_keys = &*api_keys;
    http_options.protect_health = flags->protect_health_and_metrics;
    http_options.tls = http_tls.get();
    http = std::make_unique<HttpServer>(http_options, inference.generation());
    absl::StatusOr<int> bound = http->Start();
    absl::Status s = bound.status();
    if (bound.ok()) {
      http_port = *bound;
      if (!flags->http_port_file.empty()) s = WritePortFile(flags->http_port_file, http_port);
    }
    if (!s.ok()) {
      Log(absl::StrCat(bound.ok() ? "--http-port-file: " : "--http-port: ", s.message()));
      http.reset();
      server->Shutdown();
      if (internal_server != nullptr) internal_server->Shutdown();
      fleet.Shutdown();
      return 1;
    }
    Log(absl::StrCat("OpenAI-compatible HTTP on ", host, ":", http_port,
                     http_tls != nullptr ? ": HTTPS (TLS)" : ""));
  }
  if (public_credentials != nullptr) {
    Log(absl::StrCat("public gRPC on ", host, ":", port,
                     http_tls != nullptr ? absl::StrCat(" and HTTP on ", host, ":", http_port) : "",
                     ": TLS (", flags->tls_cert, ", re-read every ",
                     absl::FormatDuration(flags->tls_refresh_interval), ")"));
  }
  Log(api_keys->enabled()
          ? absl::StrCat("public APIs require an API key (", api_keys->size(), " configured",
                         flags->protect_health_and_metrics ? "; /health and /metrics too" : "",
                         ")")
          : "public APIs are open: no API key configured (--api-key, docs/security.md)");
  if (fleet_options.internal_tls->enabled()) {
    Log(absl::StrCat("internal plane on ", internal_address, ": mutual TLS (CA ",
                     flags->internal_tls.ca_file, "; workers must be ",
                     flags->internal_tls.peer_name, "; files re-read every ",
                     absl::FormatDuration(flags->internal_tls.refresh_interval), ")"));
  } else {
    // Loud on purpose: who can reach this port can register as a worker (docs/security.md).
    Log(absl::StrCat(
        "WARNING: the internal plane (Fleet, rendezvous store) on ", internal_address,
        " is unauthenticated and unencrypted (no --internal-tls-cert)",
        split_planes ? ""
                     : " and shares the public port (no --internal-port): any client "
                       "of the public API can register as a worker",
        "; local development only (docs/security.md)"));
  }
  if (!flags->check_worker_address) {
    Log("WARNING: --worker-address-check=off: a worker may register any address, not only "
        "its own (docs/security.md)");
  }
  Log(absl::StrCat("serving ", model_id, " on ", host, ":", port, " (tensor-parallel-size ",
                   flags->tensor_parallel_size, ", num-replicas ",
                   flags->num_replicas == 0 ? std::string("auto")
                                            : absl::StrCat(flags->num_replicas),
                   ", tokenizer ", *codec != nullptr ? "yes" : "none",
                   ", max context ", fleet.MaxContext(), "); waiting for workers",
                   split_planes ? absl::StrCat(" on ", internal_address) : ""));

  // The gRPC server's threads come and go and leave free pages in every malloc arena; without
  // this the resident set creeps up under steady load (docs/resilience.md, "Soak").
  HeapReleaser heap_releaser(flags->heap_release_interval);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  // Readiness fails at once and new requests get UNAVAILABLE; those in flight finish (the fleet
  // keeps serving, and migrating, them) for at most --drain-timeout.
  Log(absl::StrCat("signal ", signal_number, ": draining (", generation->InFlightRequests(),
                   " requests in flight, at most ", absl::FormatDuration(flags->drain_timeout),
                   ")"));
  generation->BeginDrain();
  health->SetServingStatus(false);
  const DrainResult drained = WaitForDrain(*generation, signals, flags->drain_timeout);
  Log(DescribeDrain(drained, *generation));
  store.Shutdown();
  inference.Shutdown();  // cancels requests in flight (HTTP ones too)
  if (http != nullptr) http->Stop();
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  if (internal_server != nullptr) {
    internal_server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  }
  fleet.Shutdown();
  server->Wait();
  if (internal_server != nullptr) internal_server->Wait();
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace g4

int main(int argc, char** argv) { return g4::Main(argc, argv); }
