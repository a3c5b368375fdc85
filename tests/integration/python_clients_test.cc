// Starts a real cluster (g4-coordinator with the HTTP API + 2 g4-workers, tensor-parallel 2, on
// loopback) and runs the Python client tests against it with the venv that tools/test.sh creates
// (build/pyvenv, packages from tests/integration/requirements.txt): the official `openai` client
// (openai_client_test.py, structured_outputs_test.py) and a grpcio client with stubs generated
// here from proto/ (grpc_client_test.py). Also checks that a streaming HTTP client that disconnects mid-stream
// frees its sequence, and (PythonClientsOverHttpsTest, https_test.py) HTTPS on the HTTP port
// with --tls-cert/--tls-key: the openai client and Python's ssl verifying the test CA, misbehaving
// clients, a certificate renewed on disk.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"
#include "tests/testing/loopback_socket.h"

namespace g4::testing {
namespace {

using ::testing::HasSubstr;

std::string VenvPython() {
  const char* venv = std::getenv("G4_PYVENV");
  return absl::StrCat(venv != nullptr ? venv : G4_DEFAULT_PYVENV, "/bin/python");
}

class PythonClientsTest : public ::testing::Test {
 protected:
  // The cluster's API key ("" = none).
  virtual std::string ApiKey() const { return ""; }
  // Adds to the cluster's options (e.g. TLS); called before it starts.
  virtual void Configure(ClusterOptions& /*options*/) {}
  // Extra environment for the Python tests ("NAME=VALUE ...").
  virtual std::string Environment() const { return ""; }
  virtual std::string HttpUrl() const {
    return absl::StrCat("http://127.0.0.1:", cluster_->http_port());
  }

  void SetUp() override {
    python_ = VenvPython();
    if (!std::filesystem::exists(python_)) {
      GTEST_SKIP() << python_ << " not found: run tools/test.sh (creates build/pyvenv)";
    }
    ClusterOptions o;
    o.http = true;
    o.api_key = ApiKey();
    Configure(o);
    if (HasFatalFailure()) return;
    cluster_ = std::make_unique<Cluster>(o);
    ASSERT_TRUE(cluster_->Start(1));
  }

  int RunPytest(const std::string& file) {
    const std::string stubs = cluster_->dir() + "/pystubs";
    std::filesystem::create_directories(stubs);
    const std::string protoc = absl::StrCat(
        python_, " -m grpc_tools.protoc -I proto --python_out=", stubs,
        " --grpc_python_out=", stubs, " proto/g4serve/v1/inference.proto");
    if (std::system(protoc.c_str()) != 0) return -1;
    const std::string cmd = absl::StrCat(
        "G4_HTTP_URL=", HttpUrl(), " ", Environment(), " G4_GRPC_ADDR=", cluster_->address(),
        " G4_PY_STUBS=", stubs,
        ApiKey().empty() ? "" : absl::StrCat(" G4_API_KEY=", ApiKey()),
        " G4_MODEL=dense timeout 300 ", python_, " -m pytest -q -p no:cacheprovider ", file);
    return std::system(cmd.c_str());
  }

  std::string python_;
  std::unique_ptr<Cluster> cluster_;
};

TEST_F(PythonClientsTest, OpenAiClient) {
  EXPECT_EQ(RunPytest("tests/integration/openai_client_test.py"), 0) << cluster_->Logs();
}

TEST_F(PythonClientsTest, StructuredOutputs) {
  EXPECT_EQ(RunPytest("tests/integration/structured_outputs_test.py"), 0) << cluster_->Logs();
}

TEST_F(PythonClientsTest, GrpcClient) {
  EXPECT_EQ(RunPytest("tests/integration/grpc_client_test.py"), 0) << cluster_->Logs();
}

// The same clients against a cluster that requires an API key (docs/security.md).
class PythonClientsWithApiKeyTest : public PythonClientsTest {
 protected:
  std::string ApiKey() const override { return "sk-g4-python-clients-test"; }
};

TEST_F(PythonClientsWithApiKeyTest, OpenAiAndGrpcClients) {
  EXPECT_EQ(RunPytest("tests/integration/api_key_test.py"), 0) << cluster_->Logs();
}

// HTTPS: the coordinator with --tls-cert/--tls-key (docs/security.md). The certificates are made
// here; the Python side renews the server's pair on disk (tests/integration/https_test.py).
class PythonClientsOverHttpsTest : public PythonClientsTest {
 protected:
  static constexpr int kRefreshSeconds = 2;

  void Configure(ClusterOptions& o) override {
    ASSERT_TRUE(MakeTestCa(tls_dir_.path(), "ca"));
    ASSERT_TRUE(IssueTestCertificate(tls_dir_.path(), "server", "ca", "g4serve-coordinator"));
    o.tls_cert = tls_dir_.path() + "/server.crt";
    o.tls_key = tls_dir_.path() + "/server.key";
    o.tls_ca = tls_dir_.path() + "/ca.crt";
    o.extra_coordinator_flags = {"--tls-refresh-interval", absl::StrCat(kRefreshSeconds, "s")};
  }
  std::string Environment() const override {
    return absl::StrCat("G4_TLS_DIR=", tls_dir_.path(), " G4_TLS_REFRESH_S=", kRefreshSeconds);
  }
  std::string HttpUrl() const override {
    return absl::StrCat("https://localhost:", cluster_->http_port());
  }

  ScopedTempDir tls_dir_{"https_test"};
};

TEST_F(PythonClientsOverHttpsTest, OpenAiClientPythonSslAndMisbehavingClients) {
  EXPECT_THAT(cluster_->coordinator().Log(),
              HasSubstr(absl::StrCat("OpenAI-compatible HTTP on 127.0.0.1:", cluster_->http_port(),
                                     ": HTTPS (TLS)")));
  EXPECT_EQ(RunPytest("tests/integration/https_test.py"), 0) << cluster_->Logs();
  // The renewal was picked up by the process that was running all along.
  EXPECT_TRUE(cluster_->coordinator().Running());
  const std::string log = cluster_->coordinator().Log();
  EXPECT_THAT(log, HasSubstr("changed: new connections get the new certificate"));
  EXPECT_THAT(log, HasSubstr("HTTP TLS: handshake with 127.0.0.1:"));
  // The gRPC port serves TLS with the same files (the cluster's own calls verify it).
  EXPECT_GE(cluster_->ReadyReplicas(), 1);
}

int InFlight(httplib::Client& client) {
  auto r = client.Get("/health");
  if (!r || r->status != 200) return -1;
  return nlohmann::json::parse(r->body)["requests_in_flight"].get<int>();
}

// Not Python, but needs the same cluster: a client that drops a long stream after the first
// chunk frees its sequence, and the cluster keeps serving.
TEST_F(PythonClientsTest, ClientDisconnectMidStreamFreesTheSequence) {
  httplib::Client client("127.0.0.1", cluster_->http_port());
  client.set_read_timeout(std::chrono::seconds(30));
  const int fd = ConnectLoopback(cluster_->http_port());
  ASSERT_GE(fd, 0);
  const std::string body =
      R"({"prompt":"Tell me a long story","stream":true,"max_tokens":400,"ignore_eos":true})";
  const std::string request =
      absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "Content-Length: ", body.size(), "\r\n\r\n", body);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  char buf[4096];
  std::string got;
  while (got.find("data: ") == std::string::npos) {
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    got.append(buf, n);
  }
  EXPECT_THAT(got, HasSubstr("200"));
  close(fd);
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (InFlight(client) != 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(InFlight(client), 0) << cluster_->Logs();
  auto r = client.Post("/v1/completions", R"({"prompt":"Hi","max_tokens":3})",
                       "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace g4::testing
