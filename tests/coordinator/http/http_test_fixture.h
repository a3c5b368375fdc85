// The HTTP tests' fixture: a fleet of in-process fake workers behind the real generation path,
// served over gRPC and over the coordinator's HTTP server on loopback ports, plus raw-socket
// helpers for what an HTTP client library would not send.
#ifndef G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
#define G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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

class HttpServerTest : public ::testing::Test {
 protected:
  // What SetUp gives the HTTP server; override to change limits.
  virtual HttpServerOptions HttpOptions() {
    HttpServerOptions o;
    o.max_body_bytes = 1 << 20;
    return o;
  }

  void SetUp() override {
    FleetOptions o;
    o.model_dir = "/models/dense";
    o.model_name = "dense";
    o.model_config = TinyConfig();
    o.health_interval = absl::Milliseconds(100);
    o.log = [](const std::string&) {};
    fleet_ = std::make_unique<FleetManager>(o, &store_);
    router_ = std::make_unique<Router>(fleet_.get());
    InferenceOptions io;
    io.model_id = "dense";
    io.vocab_size = 262144;
    service_ = std::make_unique<InferenceServiceImpl>(io, Codec(), fleet_.get(), router_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    grpc_port_ = port;
    stub_ = g4serve::v1::Inference::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
    http_ = std::make_unique<HttpServer>(HttpOptions(), service_->generation());
    absl::StatusOr<int> http_port = http_->Start();
    ASSERT_TRUE(http_port.ok()) << http_port.status();
    http_port_ = *http_port;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", http_port_);
    client_->set_read_timeout(std::chrono::seconds(20));
  }

  void StartWorkers(int n) {
    for (int i = 0; i < n; ++i) {
      workers_.push_back(std::make_unique<FakeWorker>());
      ASSERT_TRUE(fleet_->Register(workers_.back()->Registration()).ok());
      ASSERT_TRUE(fleet_->WaitForState(i, ReplicaState::kReady, absl::Seconds(20)));
    }
    fleet_->Start();
  }

  void TearDown() override {
    service_->Shutdown();
    http_->Stop();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
    fleet_.reset();
    workers_.clear();
  }

  httplib::Result Post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }

  // A new loopback connection to the HTTP server (-1 on failure).
  int Connect() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(http_port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  static bool SendAll(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  // Everything the server sends until it closes the connection (or `timeout` passes).
  static std::string ReadUntilClosed(int fd, absl::Duration timeout = absl::Seconds(10)) {
    std::string got;
    const absl::Time deadline = absl::Now() + timeout;
    char buf[4096];
    while (absl::Now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }

  // Sends `request` on a new connection and returns the whole answer, until the server closes
  // the connection (after an error, or with "Connection: close"). The client keeps its side
  // open: a client that shuts it down is gone.
  std::string RawExchange(const std::string& request) const {
    const int fd = Connect();
    EXPECT_GE(fd, 0);
    if (fd < 0) return "";
    EXPECT_TRUE(SendAll(fd, request));
    std::string got = ReadUntilClosed(fd);
    close(fd);
    return got;
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

#endif  // G4SERVE_TESTS_COORDINATOR_HTTP_HTTP_TEST_FIXTURE_H_
