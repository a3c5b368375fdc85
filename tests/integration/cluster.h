// A g4serve cluster on loopback for multi-process tests: one g4-coordinator and N g4-worker
// processes on ports picked by the OS, torn down (SIGKILL) when the Cluster is destroyed.
// RestartCoordinator() replaces the coordinator by a new one on the same port.
#ifndef G4SERVE_TESTS_INTEGRATION_CLUSTER_H_
#define G4SERVE_TESTS_INTEGRATION_CLUSTER_H_

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/process.h"
#include "tests/testing/temp_dir.h"

namespace g4::testing {

struct ClusterOptions {
  std::string model = "tests/data/golden/dense";
  int workers = 2;
  int tensor_parallel_size = 2;
  int expert_parallel_size = 1;
  std::vector<std::string> extra_coordinator_flags;
  bool http = false;  // also serve the OpenAI-compatible HTTP API (http_port())
  // Prometheus metrics on picked ports: the coordinator (metrics_port()) and every worker
  // (WorkerMetricsAddress(i)), all with --metrics-port 0.
  bool metrics = false;
  std::vector<std::string> extra_worker_flags;
  // Started with --api-key api_key (docs/security.md); the cluster's own calls send it.
  std::string api_key;
  // TLS on the public ports (--tls-cert, --tls-key; docs/security.md); the cluster's own gRPC
  // calls verify the coordinator against tls_ca. All empty: plaintext.
  std::string tls_cert, tls_key, tls_ca;
};

// The common case: `workers` workers serving `model` at tensor-/expert-parallel sizes `tp`/`ep`,
// the coordinator started with `coordinator_flags` besides the cluster's own.
inline ClusterOptions ClusterOf(std::string model, int workers, int tp, int ep,
                                std::vector<std::string> coordinator_flags = {}) {
  ClusterOptions options;
  options.model = std::move(model);
  options.workers = workers;
  options.tensor_parallel_size = tp;
  options.expert_parallel_size = ep;
  options.extra_coordinator_flags = std::move(coordinator_flags);
  return options;
}

class Cluster {
 public:
  explicit Cluster(ClusterOptions options) : options_(std::move(options)) {}

  // Starts everything and waits until `replicas` replicas are ready (bounded).
  ::testing::AssertionResult Start(int replicas, absl::Duration timeout = absl::Seconds(60)) {
    if (temp_dir_ == nullptr) temp_dir_ = std::make_unique<ScopedTempDir>("g4cluster");
    if (!temp_dir_->ok()) return ::testing::AssertionFailure() << "no temporary directory";
    dir_ = temp_dir_->path();
    if (::testing::AssertionResult started = StartCoordinator(/*port=*/0); !started) {
      return started;
    }
    for (int i = 0; i < options_.workers; ++i) StartWorker();
    channel_ = grpc::CreateChannel(address_, ChannelCredentials());
    stub_ = g4serve::v1::Inference::NewStub(channel_);
    if (!WaitForReplicas(replicas, timeout)) {
      return ::testing::AssertionFailure() << "replicas not ready\n" << Logs();
    }
    return ::testing::AssertionSuccess();
  }

  // SIGKILLs the coordinator and starts a new one on the same port (the workers keep running and
  // find it through their heartbeat, docs/worker.md). HTTP / metrics ports are picked anew.
  ::testing::AssertionResult RestartCoordinator() {
    coordinator_.Kill(SIGKILL);  // and waits for it
    const std::string log = dir_ + "/coordinator.log";
    const std::string kept = absl::StrCat(log, ".", restarts_++);
    std::rename(log.c_str(), kept.c_str());
    return StartCoordinator(coordinator_port_);
  }

  void StartWorker() {
    const int i = static_cast<int>(workers_.size());
    workers_.push_back(std::make_unique<Process>());
    StartWorkerProcess(i, 0);
  }

  // Starts worker i again (after it died or was killed) on the port it had: a restarted process
  // on the same address. Its log continues in the same file.
  void RestartWorker(int i) {
    const int port = WorkerPort(i);
    workers_[i]->Kill(SIGKILL);
    StartWorkerProcess(i, port);
  }

  // SIGKILLs worker i (and waits for it); its replica goes out of service.
  void KillWorker(int i) { workers_[i]->Kill(SIGKILL); }

  // The gRPC port worker i logged ("listening on 127.0.0.1:PORT", the last one); -1 if none.
  int WorkerPort(int i) const {
    const std::string log = workers_[i]->Log();
    const size_t at = log.rfind("listening on ");
    if (at == std::string::npos) return -1;
    const size_t colon = log.find(':', at);
    return colon == std::string::npos ? -1 : std::atoi(log.c_str() + colon + 1);
  }

  // The index of the worker that leads replica `replica` (from the coordinator's last "replica
  // R: LOADING on ... (leader HOST:PORT" line); -1 if unknown.
  int LeaderOf(int replica) const {
    const std::string log = coordinator_.Log();
    const std::string key = absl::StrCat("replica ", replica, ": LOADING on ");
    const size_t at = log.rfind(key);
    if (at == std::string::npos) return -1;
    const size_t leader = log.find("(leader ", at);
    const size_t colon = log.find(':', leader);
    if (leader == std::string::npos || colon == std::string::npos) return -1;
    const int port = std::atoi(log.c_str() + colon + 1);
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (WorkerPort(static_cast<int>(i)) == port) return static_cast<int>(i);
    }
    return -1;
  }

  // Adds the cluster's API key (if any) to a call's metadata.
  void Authorize(grpc::ClientContext& ctx) const {
    if (!options_.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + options_.api_key);
  }

  // ListModels' model (replicas_ready -1 when the call fails).
  g4serve::v1::ModelInfo Model() {
    grpc::ClientContext ctx;
    Authorize(ctx);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    g4serve::v1::ListModelsResponse resp;
    if (!stub_->ListModels(&ctx, g4serve::v1::ListModelsRequest(), &resp).ok() ||
        resp.models_size() == 0) {
      g4serve::v1::ModelInfo none;
      none.set_replicas_ready(-1);
      return none;
    }
    return resp.models(0);
  }

  // With ClusterOptions::metrics: "host:port" of worker i's /metrics (from its log line
  // "metrics on HOST:PORT"); empty if it does not appear within `timeout`.
  std::string WorkerMetricsAddress(int i, absl::Duration timeout = absl::Seconds(10)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      const std::string log = workers_[i]->Log();
      const size_t at = log.find("metrics on ");
      if (at != std::string::npos) {
        const size_t end = log.find_first_of(" \n", at + 11);
        if (end != std::string::npos) return log.substr(at + 11, end - at - 11);
      }
      if (absl::Now() > deadline) return "";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  bool WaitForReplicas(int ready, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (ReadyReplicas() >= ready) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  int ReadyReplicas() {
    grpc::ClientContext ctx;
    Authorize(ctx);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    g4serve::v1::ListModelsResponse resp;
    if (!stub_->ListModels(&ctx, g4serve::v1::ListModelsRequest(), &resp).ok() ||
        resp.models_size() == 0) {
      return -1;
    }
    return resp.models(0).replicas_ready();
  }

  struct Result {
    grpc::Status status;
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    std::string text;
    g4serve::v1::FinishReason finish = g4serve::v1::FINISH_REASON_UNSPECIFIED;
    g4serve::v1::Usage usage;
  };

  Result Generate(const g4serve::v1::GenerateRequest& request,
                  absl::Duration timeout = absl::Seconds(30)) {
    grpc::ClientContext ctx;
    Authorize(ctx);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    auto reader = stub_->Generate(&ctx, request);
    g4serve::v1::GenerateResponse r;
    Result out;
    while (reader->Read(&r)) {
      out.text += r.text();
      for (const auto& t : r.tokens()) {
        out.tokens.push_back(t.token_id());
        out.logprobs.push_back(t.logprob());
      }
      if (r.finish_reason() != g4serve::v1::FINISH_REASON_UNSPECIFIED) {
        out.finish = r.finish_reason();
        out.usage = r.usage();
      }
    }
    out.status = reader->Finish();
    return out;
  }

  Process& worker(int i) { return *workers_[i]; }
  Process& coordinator() { return coordinator_; }
  g4serve::v1::Inference::Stub& stub() { return *stub_; }
  const std::string& address() const { return address_; }  // the public gRPC API
  // The internal plane (Fleet, store) the workers dial.
  const std::string& internal_address() const { return internal_address_; }
  int http_port() const { return http_port_; }  // with ClusterOptions::http
  int metrics_port() const { return metrics_port_; }  // with ClusterOptions::metrics
  const std::string& dir() const { return dir_; }

  // Starts g4-coordinator on `port` (0: any) and waits for its port files.
  ::testing::AssertionResult StartCoordinator(int port) {
    const std::string port_file = dir_ + "/coordinator.port";
    std::remove(port_file.c_str());  // a restart waits for the new coordinator's file
    std::vector<std::string> argv = {G4_COORDINATOR_BIN, "--model", options_.model,
                                     "--tensor-parallel-size",
                                     std::to_string(options_.tensor_parallel_size),
                                     "--expert-parallel-size",
                                     std::to_string(options_.expert_parallel_size),
                                     "--host", "127.0.0.1", "--port", std::to_string(port),
                                     "--port-file", port_file, "--health-interval", "200ms"};
    // The internal plane on its own port (docs/security.md), kept across restarts like --port.
    const std::string internal_port_file = dir_ + "/coordinator.internal_port";
    std::remove(internal_port_file.c_str());
    argv.insert(argv.end(), {"--internal-port", std::to_string(internal_port_),
                             "--internal-port-file", internal_port_file});
    const std::string http_port_file = dir_ + "/coordinator.http_port";
    if (options_.http) {
      std::remove(http_port_file.c_str());
      argv.insert(argv.end(), {"--http-port", "0", "--http-port-file", http_port_file});
    }
    const std::string metrics_port_file = dir_ + "/coordinator.metrics_port";
    if (options_.metrics) {
      std::remove(metrics_port_file.c_str());
      argv.insert(argv.end(), {"--metrics-port", "0", "--metrics-port-file", metrics_port_file});
    }
    if (!options_.api_key.empty()) argv.insert(argv.end(), {"--api-key", options_.api_key});
    if (!options_.tls_cert.empty()) {
      argv.insert(argv.end(), {"--tls-cert", options_.tls_cert, "--tls-key", options_.tls_key});
    }
    argv.insert(argv.end(), options_.extra_coordinator_flags.begin(),
                options_.extra_coordinator_flags.end());
    if (!coordinator_.Start(argv, dir_ + "/coordinator.log")) {
      return ::testing::AssertionFailure() << "cannot start g4-coordinator";
    }
    const int bound = WaitForPortFile(port_file, absl::Seconds(20));
    if (bound <= 0) return ::testing::AssertionFailure() << "no port file\n" << coordinator_.Log();
    address_ = absl::StrCat("127.0.0.1:", bound);
    coordinator_port_ = bound;
    internal_port_ = WaitForPortFile(internal_port_file, absl::Seconds(20));
    if (internal_port_ <= 0) {
      return ::testing::AssertionFailure() << "no internal port file\n" << coordinator_.Log();
    }
    internal_address_ = absl::StrCat("127.0.0.1:", internal_port_);
    if (options_.http) {
      http_port_ = WaitForPortFile(http_port_file, absl::Seconds(20));
      if (http_port_ <= 0) {
        return ::testing::AssertionFailure() << "no HTTP port file\n" << coordinator_.Log();
      }
    }
    if (options_.metrics) {
      metrics_port_ = WaitForPortFile(metrics_port_file, absl::Seconds(20));
      if (metrics_port_ <= 0) {
        return ::testing::AssertionFailure() << "no metrics port file\n" << coordinator_.Log();
      }
    }
    return ::testing::AssertionSuccess();
  }

  void StartWorkerProcess(int i, int port) {
    std::vector<std::string> argv = {G4_WORKER_BIN, "--coordinator", internal_address_, "--host",
                                     "127.0.0.1",   "--port",      std::to_string(port),
                                     "--threads",   "1"};
    if (options_.metrics) argv.insert(argv.end(), {"--metrics-port", "0"});
    argv.insert(argv.end(), options_.extra_worker_flags.begin(), options_.extra_worker_flags.end());
    workers_[i]->Start(argv, absl::StrCat(dir_, "/worker", i, ".log"));
  }

  // The credentials of the cluster's own gRPC calls: TLS trusting tls_ca, or plaintext.
  std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() const {
    if (options_.tls_ca.empty()) return grpc::InsecureChannelCredentials();
    std::ifstream in(options_.tls_ca);
    std::stringstream ca;
    ca << in.rdbuf();
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ca.str();
    return grpc::SslCredentials(ssl);
  }

  std::string Logs() {
    std::string all = "--- coordinator ---\n" + coordinator_.Log();
    for (size_t i = 0; i < workers_.size(); ++i) {
      all += absl::StrCat("--- worker ", i, " ---\n", workers_[i]->Log());
    }
    return all;
  }

 private:
  ClusterOptions options_;
  // Declared first so that it goes last: the processes below still write into it.
  std::unique_ptr<ScopedTempDir> temp_dir_;
  std::string dir_, address_, internal_address_;
  int internal_port_ = 0;  // 0 until the first start picks one
  int http_port_ = 0;
  int metrics_port_ = 0;
  int coordinator_port_ = 0;
  int restarts_ = 0;
  Process coordinator_;
  std::vector<std::unique_ptr<Process>> workers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<g4serve::v1::Inference::Stub> stub_;
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_INTEGRATION_CLUSTER_H_
