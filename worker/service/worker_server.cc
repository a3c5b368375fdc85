#include "worker/service/worker_server.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "proto/grpc_listen.h"
#include "proto/grpc_status.h"

namespace g4 {

namespace wv1 = ::g4serve::worker::v1;

std::string JoinHostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

wv1::DeviceInfo LocalCpuDeviceInfo() {
  wv1::DeviceInfo info;
  info.set_kind("cpu");
  info.set_index(0);
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (absl::StartsWith(line, "model name")) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) {
        info.set_name(std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
        break;
      }
    }
  }
  if (info.name().empty()) info.set_name("cpu");
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (absl::StartsWith(line, "MemTotal:")) {  // "MemTotal:   131891164 kB"
      const std::string rest = line.substr(9);
      std::vector<absl::string_view> parts = absl::StrSplit(rest, ' ', absl::SkipWhitespace());
      int64_t kb = 0;
      if (!parts.empty() && absl::SimpleAtoi(parts[0], &kb)) info.set_memory_bytes(kb * 1024);
      break;
    }
  }
  return info;
}

absl::StatusOr<std::unique_ptr<WorkerServer>> WorkerServer::Start(WorkerServerOptions options) {
  if (options.coordinator.empty()) return absl::InvalidArgumentError("coordinator: empty");
  if (options.host.empty()) return absl::InvalidArgumentError("host: empty");
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port must be in [0, 65535], got ",
                                                   options.port));
  }
  if (options.metrics_port < -1 || options.metrics_port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_port must be -1 (disabled) or in [0, 65535], got ", options.metrics_port));
  }
  if (absl::Status st = ValidateMetricsPrefix(options.metrics_prefix); !st.ok()) return st;
  std::unique_ptr<WorkerServer> s(new WorkerServer(std::move(options)));
  const WorkerServerOptions& o = s->options_;
  absl::StatusOr<std::unique_ptr<InternalTls>> tls = InternalTls::Create(o.internal_tls);
  if (!tls.ok()) return tls.status();
  s->tls_ = *std::move(tls);

  std::unique_ptr<MetricsServer> metrics;
  if (o.metrics_port >= 0) {
    absl::StatusOr<std::unique_ptr<MetricsServer>> m = MetricsServer::Start(
        o.metrics_host.empty() ? o.host : o.metrics_host, o.metrics_port);
    if (!m.ok()) return m.status();
    metrics = std::move(*m);
  }

  grpc::ChannelArguments channel_args;
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  channel_args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  s->coordinator_ = s->tls_->Dial(o.coordinator, channel_args);
  s->store_ = std::make_unique<GrpcKeyValueStore>(s->coordinator_);

  WorkerServiceOptions so;
  so.store = s->store_.get();
  so.gloo_hostname = o.host;
  so.gloo_interface = o.gloo_interface;
  so.log = o.log;
  if (metrics != nullptr) so.metrics_registry = metrics->registry();
  so.metrics_prefix = o.metrics_prefix;
  so.metrics_model_name = o.metrics_model_name;
  so.model_root = o.model_root;
  s->service_ = std::make_unique<WorkerServiceImpl>(std::move(so));
  if (metrics != nullptr) {
    WorkerServiceImpl* service = s->service_.get();
    metrics->AddScrapeCallback([service] { service->RefreshMetrics(); });
    s->metrics_ = std::move(metrics);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.RegisterService(s->service_.get());
  builder.SetMaxReceiveMessageSize(o.max_receive_message_bytes);
  // Long prefills are silent: keep connections alive and accept the coordinator's pings.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A port in use is an error, never shared (SO_REUSEPORT off); one line (grpc_listen.h).
  absl::StatusOr<StartedGrpcServer> started =
      StartGrpcServer(builder, JoinHostPort(o.host, o.port), s->tls_->ServerCredentials());
  if (!started.ok()) return started.status();
  s->server_ = std::move(started->server);
  s->port_ = started->port;
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  return s;
}

WorkerServer::~WorkerServer() { Shutdown(); }

absl::StatusOr<std::string> WorkerServer::Register() {
  auto stub = wv1::Fleet::NewStub(coordinator_);
  wv1::RegisterRequest request;
  request.set_address(address());
  *request.mutable_device() = LocalCpuDeviceInfo();
  if (!options_.replica_group.empty()) request.set_replica_group(options_.replica_group);
  if (options_.replica_rank >= 0) request.set_replica_rank(options_.replica_rank);
  const absl::Time deadline = absl::Now() + options_.register_timeout;
  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    if (shutting_down_.load()) return absl::CancelledError("Register: shutting down");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(
        std::min(deadline, absl::Now() + absl::Seconds(5))));
    wv1::RegisterResponse response;
    if (!BeginCall(&ctx)) return absl::CancelledError("Register: shutting down");
    const grpc::Status s = stub->Register(&ctx, request, &response);
    EndCall(&ctx);
    if (s.ok()) return response.worker_id();
    if (shutting_down_.load()) return absl::CancelledError("Register: shutting down");
    const bool retry = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!retry) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                          absl::StrCat("Register with ", options_.coordinator, ": ",
                                       s.error_message()));
    }
    if (absl::Now() + backoff >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("coordinator ", options_.coordinator, " did not answer within ",
                       absl::FormatDuration(options_.register_timeout), ": ",
                       s.error_message()));
    }
    if (!SleepUnlessShuttingDown(backoff)) {
      return absl::CancelledError("Register: shutting down");
    }
    backoff = std::min(backoff * 2, absl::Seconds(2));
  }
}

bool WorkerServer::BeginCall(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&heartbeat_mu_);
  if (stop_) return false;
  calls_.push_back(ctx);
  return true;
}

void WorkerServer::EndCall(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&heartbeat_mu_);
  calls_.erase(std::remove(calls_.begin(), calls_.end(), ctx), calls_.end());
}

bool WorkerServer::SleepUnlessShuttingDown(absl::Duration d) {
  absl::MutexLock lock(&heartbeat_mu_);
  heartbeat_mu_.AwaitWithTimeout(absl::Condition(&stop_), d);
  return !stop_;
}

std::string WorkerServer::worker_id() const {
  absl::MutexLock lock(&heartbeat_mu_);
  return worker_id_;
}

void WorkerServer::StartHeartbeat(std::string worker_id) {
  absl::MutexLock lock(&heartbeat_mu_);
  worker_id_ = std::move(worker_id);
  if (stop_ || options_.heartbeat_interval <= absl::ZeroDuration() ||
      heartbeat_thread_.joinable()) {
    return;
  }
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
}

void WorkerServer::HeartbeatLoop() {
  auto stub = wv1::Fleet::NewStub(coordinator_);
  auto log = [this](const std::string& line) {
    if (options_.log) std::fprintf(stderr, "g4-worker: %s\n", line.c_str());
  };
  while (SleepUnlessShuttingDown(options_.heartbeat_interval)) {
    wv1::HeartbeatRequest request;
    request.set_worker_id(worker_id());
    request.set_address(address());
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(
        absl::Now() + std::clamp(options_.heartbeat_interval, absl::Milliseconds(500),
                                 absl::Seconds(2))));
    wv1::HeartbeatResponse response;
    if (!BeginCall(&ctx)) return;
    const grpc::Status s = stub->Heartbeat(&ctx, request, &response);
    EndCall(&ctx);
    // OK: still known. UNAVAILABLE / DEADLINE_EXCEEDED / others: the coordinator is down or
    // restarting; try again next round.
    if (s.error_code() != grpc::StatusCode::NOT_FOUND) continue;
    log(absl::StrCat("coordinator ", options_.coordinator, " does not know worker ",
                     request.worker_id(), " (restarted?): tearing down, registering again"));
    if (!service_->ResetToIdle()) continue;  // a Load in progress (or shutting down): next round
    absl::StatusOr<std::string> id = Register();
    if (!id.ok()) {
      if (id.status().code() == absl::StatusCode::kCancelled) return;
      log(absl::StrCat("registering again failed (next round tries again): ",
                       id.status().ToString()));
      continue;
    }
    log(absl::StrCat("registered with ", options_.coordinator, " as ", *id));
    absl::MutexLock lock(&heartbeat_mu_);
    worker_id_ = *std::move(id);
  }
}

bool WorkerServer::Drain(absl::Duration timeout) {
  const bool released = service_->Drain(absl::Now() + timeout);
  if (options_.log) {
    std::fprintf(stderr, "g4-worker: %s\n",
                 released ? "drained" : "drain ended before the replica was released");
  }
  return released;
}

void WorkerServer::Shutdown(absl::Duration grace) {
  shutting_down_.store(true);
  std::thread heartbeat;
  {
    absl::MutexLock lock(&heartbeat_mu_);
    stop_ = true;
    for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
    heartbeat = std::move(heartbeat_thread_);
  }
  // Before the service: the heartbeat thread may be tearing its replica down.
  if (heartbeat.joinable()) heartbeat.join();
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(false);
  // The engine first: its streams end (aborted), then the server stops taking calls. (Start may
  // fail, e.g. on a metrics port in use, before the service exists.)
  if (service_ != nullptr) service_->Shutdown();
  if (server_ != nullptr) server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
}

void WorkerServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace g4
