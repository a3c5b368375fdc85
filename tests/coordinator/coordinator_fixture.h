// The coordinator in one process, for tests: the fleet, the router and the inference service
// behind a gRPC server on a loopback port (and, when asked, the HTTP server), with in-process
// fake workers. One fixture for every test of the serving path (the gRPC API, the HTTP API,
// API keys, metrics), so that they all build the coordinator the way main.cc does, once.
#ifndef G4SERVE_TESTS_COORDINATOR_COORDINATOR_FIXTURE_H_
#define G4SERVE_TESTS_COORDINATOR_COORDINATOR_FIXTURE_H_

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "coordinator/api/inference_service.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/http/http_server.h"
#include "coordinator/router/router.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "tests/coordinator/fake_worker.h"

namespace g4::testing {

class CoordinatorFixture : public ::testing::Test {
 protected:
  // The tiny dense model's fleet, health checks every 100 ms, no log.
  static FleetOptions TestFleetOptions() {
    FleetOptions o;
    o.model_dir = "/models/dense";
    o.model_name = "dense";
    o.model_config = TinyConfig();
    o.health_interval = absl::Milliseconds(100);
    o.log = [](const std::string&) {};
    return o;
  }

  static InferenceOptions TestInferenceOptions() {
    InferenceOptions o;
    o.model_id = "dense";
    o.vocab_size = 262144;  // the test tokenizer's
    return o;
  }

  // Starts the coordinator with no worker yet; `http` also serves the OpenAI HTTP API (and
  // makes `client_`). `codec` null: a coordinator without a tokenizer (token-id requests only).
  void StartCoordinator(const FleetOptions& fleet_options, const InferenceOptions& inference,
                        const HfTextCodec* codec, std::optional<HttpServerOptions> http) {
    fleet_ = std::make_unique<FleetManager>(fleet_options, &store_);
    router_ = std::make_unique<Router>(fleet_.get());
    service_ = std::make_unique<InferenceServiceImpl>(inference, codec, fleet_.get(),
                                                      router_.get());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(grpc_port_, 0);
    stub_ = g4serve::v1::Inference::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(grpc_port_), grpc::InsecureChannelCredentials()));
    if (!http.has_value()) return;
    http_ = std::make_unique<HttpServer>(*http, service_->generation());
    absl::StatusOr<int> http_port = http_->Start();
    ASSERT_TRUE(http_port.ok()) << http_port.status();
    http_port_ = *http_port;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    client_->set_read_timeout(std::chrono::seconds(20));
  }

  // Registers `n` more fake workers (tensor-parallel-size 1: one replica each), waits until each
  // replica is READY, and starts the health loop.
  void StartWorkers(int n) {
    for (int i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<FakeWorker>());
      ASSERT_TRUE(fleet_->Register(workers_.back()->Registration()).ok());
      ASSERT_TRUE(fleet_->WaitForState(static_cast<int>(workers_.size()) - 1, ReplicaState::kReady,
                                       absl::Seconds(20)));
    }
    fleet_->Start();
  }

  // Stops everything in the order main.cc does (requests first, then the servers, the fleet and
  // the workers), before a derived fixture's members (e.g. the metrics they point at) go.
  void TearDown() override {
    if (service_ != nullptr) service_->Shutdown();
    client_.reset();
    if (http_ != nullptr) http_->Stop();
    if (server_ != nullptr) {
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
      server_->Wait();
    }
    stub_.reset();
    server_.reset();
    http_.reset();
    service_.reset();
    router_.reset();
    fleet_.reset();
    workers_.clear();
  }

  KeyValueStoreServer store_;
  std::unique_ptr<FleetManager> fleet_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<InferenceServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::unique_ptr<g4serve::v1::Inference::Stub> stub_;
  std::unique_ptr<HttpServer> http_;
  int http_port_ = 0;
  std::unique_ptr<httplib::Client> client_;
  std::vector<std::unique_ptr<FakeWorker>> workers_;
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COORDINATOR_COORDINATOR_FIXTURE_H_
