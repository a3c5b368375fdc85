#include "proto/internal_tls.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/grpc_listen.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"

namespace g4 {
namespace {

namespace wv1 = ::g4serve::worker::v1;
using ::testing::HasSubstr;

// A Fleet service that answers Register: the call got through the handshake and the identity
// check.
class RegisterOnly final : public wv1::Fleet::Service {
  grpc::Status Register(grpc::ServerContext*, const wv1::RegisterRequest*,
                        wv1::RegisterResponse* response) override {
    response->set_worker_id("w-test");
    return grpc::Status::OK;
  }
};

class InternalTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    temp_dir_ = new testing::ScopedTempDir("internal_tls_test");
    dir_ = new std::string(temp_dir_->path());
    ASSERT_TRUE(testing::MakeTestCertificates(*dir_));
    ASSERT_TRUE(testing::MakeTestCa(*dir_, "ca2"));
    ASSERT_TRUE(testing::IssueTestCertificate(*dir_, "coordinator2", "ca2",
                                              kDefaultCoordinatorIdentity));
    ASSERT_TRUE(testing::IssueTestCertificate(*dir_, "worker2", "ca2", kDefaultWorkerIdentity));
  }
  static void TearDownTestSuite() {
    delete temp_dir_;
    delete dir_;
  }

  static std::string Path(const std::string& name) { return *dir_ + "/" + name; }

  // Options for the certificate NAME.crt/.key, trusting `ca`.crt, requiring `peer`.
  static InternalTlsOptions Options(const std::string& name, const std::string& ca,
                                    const std::string& peer) {
    InternalTlsOptions o;
    o.cert_file = Path(name + ".crt");
    o.key_file = Path(name + ".key");
    o.ca_file = Path(ca + ".crt");
    o.peer_name = peer;
    o.refresh_interval = absl::Seconds(1);
    return o;
  }

  // Starts a Fleet (Register only) server with `server` credentials on a free loopback port.
  void Serve(const InternalTls& server) {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    absl::StatusOr<StartedGrpcServer> started =
        StartGrpcServer(builder, "127.0.0.1:0", server.ServerCredentials());
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = std::move(started->server);
    address_ = absl::StrCat("127.0.0.1:", started->port);
  }

  // Register over a new connection (its own subchannel pool: a fresh handshake every time).
  grpc::Status Register(const InternalTls& client) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto stub = wv1::Fleet::NewStub(client.Dial(address_, args));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    wv1::RegisterRequest request;
    request.set_address("127.0.0.1:1");
    wv1::RegisterResponse response;
    return stub->Register(&ctx, request, &response);
  }

  std::unique_ptr<InternalTls> Make(InternalTlsOptions options) {
    absl::StatusOr<std::unique_ptr<InternalTls>> tls = InternalTls::Create(std::move(options));
    EXPECT_TRUE(tls.ok()) << tls.status();
    return tls.ok() ? *std::move(tls) : nullptr;
  }

  // Polls Register over new connections until its code is `code` (the file watcher's refresh
  // is 1 s); false after `timeout`.
  bool EventuallyRegisters(const InternalTls& client, grpc::StatusCode code,
                           absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Register(client).error_code() == code) return true;
      absl::SleepFor(absl::Milliseconds(200));
    }
    return false;
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  static inline testing::ScopedTempDir* temp_dir_ = nullptr;
  static inline std::string* dir_ = nullptr;
  RegisterOnly service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

// Copies `from` over `to` by a rename, so a reader never sees half a file.
void Replace(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".new";
  std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(tmp, to);
}

TEST_F(InternalTlsTest, OnlyAWorkerOfTheCaGetsThroughTheCoordinatorsPort) {
  std::unique_ptr<InternalTls> coordinator =
      Make(Options("coordinator", "ca", kDefaultWorkerIdentity));
  ASSERT_NE(coordinator, nullptr);
  ASSERT_NO_FATAL_FAILURE(Serve(*coordinator));

  std::unique_ptr<InternalTls> worker = Make(Options("worker", "ca", kDefaultCoordinatorIdentity));
  EXPECT_TRUE(Register(*worker).ok()) << Register(*worker).error_message();

  // No certificate: the handshake fails, nothing reaches the service.
  std::unique_ptr<InternalTls> plaintext = Make(InternalTlsOptions{});
  EXPECT_EQ(Register(*plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A certificate of another CA naming the worker identity (its client trusts the real CA too,
  // so only the server's check can refuse it): refused by the handshake as well.
  InternalTlsOptions rogue_options =
      Options("rogue-worker", "rogue-ca", kDefaultCoordinatorIdentity);
  std::ofstream(Path("both.crt")) << std::ifstream(Path("ca.crt")).rdbuf()
                                  << std::ifstream(Path("rogue-ca.crt")).rdbuf();
  rogue_options.ca_file = Path("both.crt");
  std::unique_ptr<InternalTls> rogue = Make(rogue_options);
  ASSERT_NE(rogue, nullptr);
  EXPECT_EQ(Register(*rogue).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The right CA but not a worker's identity (the coordinator's own certificate).
  std::unique_ptr<InternalTls> other =
      Make(Options("coordinator", "ca", kDefaultCoordinatorIdentity));
  const grpc::Status denied = Register(*other);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), HasSubstr("does not name g4serve-worker"));
  // The worker still gets through after all that.
  EXPECT_TRUE(Register(*worker).ok());
}

TEST_F(InternalTlsTest, AClientDialsOnlyTheIdentityItExpects) {
  // A server presenting a worker's certificate where a worker expects the coordinator.
  std::unique_ptr<InternalTls> impostor = Make(Options("worker", "ca", kDefaultWorkerIdentity));
  ASSERT_NE(impostor, nullptr);
  ASSERT_NO_FATAL_FAILURE(Serve(*impostor));
  std::unique_ptr<InternalTls> worker = Make(Options("worker", "ca", kDefaultCoordinatorIdentity));
  const grpc::Status s = Register(*worker);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  // The same client dialing for a worker identity passes the host name check.
  std::unique_ptr<InternalTls> peer = Make(Options("worker", "ca", kDefaultWorkerIdentity));
  EXPECT_TRUE(Register(*peer).ok());
}

// cert-manager renews the certificate in place: the next handshake presents the new one, no
// restart. Here the coordinator's certificate moves to a new CA that the worker alone trusts.
TEST_F(InternalTlsTest, ARenewedCertificateIsPresentedWithoutARestart) {
  const std::string live = Path("live-identity");
  std::filesystem::create_directories(live);
  Replace(Path("coordinator.crt"), live + "/tls.crt");
  Replace(Path("coordinator.key"), live + "/tls.key");
  std::ofstream(live + "/ca.crt") << std::ifstream(Path("ca.crt")).rdbuf()
                                  << std::ifstream(Path("ca2.crt")).rdbuf();
  InternalTlsOptions o;
  o.cert_file = live + "/tls.crt";
  o.key_file = live + "/tls.key";
  o.ca_file = live + "/ca.crt";
  o.peer_name = kDefaultWorkerIdentity;
  o.refresh_interval = absl::Seconds(1);
  std::unique_ptr<InternalTls> coordinator = Make(o);
  ASSERT_NE(coordinator, nullptr);
  ASSERT_NO_FATAL_FAILURE(Serve(*coordinator));

  // worker2 trusts ca2 only: the coordinator's ca certificate is refused.
  std::unique_ptr<InternalTls> worker2 =
      Make(Options("worker2", "ca2", kDefaultCoordinatorIdentity));
  ASSERT_NE(worker2, nullptr);
  EXPECT_EQ(Register(*worker2).error_code(), grpc::StatusCode::UNAVAILABLE);

  Replace(Path("coordinator2.key"), live + "/tls.key");
  Replace(Path("coordinator2.crt"), live + "/tls.crt");
  EXPECT_TRUE(EventuallyRegisters(*worker2, grpc::StatusCode::OK))
      << "the renewed certificate was not presented";
}

// Rotating the CA bundle: a worker whose certificate is of the CA taken out of the bundle is
// refused from the next handshake on; one of the new CA gets through.
TEST_F(InternalTlsTest, ACaTakenOutOfTheBundleStopsWorking) {
  const std::string live = Path("live-ca");
  std::filesystem::create_directories(live);
  Replace(Path("ca.crt"), live + "/ca.crt");
  InternalTlsOptions o = Options("coordinator", "ca", kDefaultWorkerIdentity);
  o.ca_file = live + "/ca.crt";
  std::unique_ptr<InternalTls> coordinator = Make(o);
  ASSERT_NE(coordinator, nullptr);
  ASSERT_NO_FATAL_FAILURE(Serve(*coordinator));

  std::unique_ptr<InternalTls> old_worker =
      Make(Options("worker", "ca", kDefaultCoordinatorIdentity));
  EXPECT_TRUE(Register(*old_worker).ok());
  // worker2 (of ca2) trusts ca, which signs the coordinator's certificate.
  InternalTlsOptions w2 = Options("worker2", "ca2", kDefaultCoordinatorIdentity);
  std::ofstream(Path("ca-and-ca2.crt")) << std::ifstream(Path("ca.crt")).rdbuf()
                                        << std::ifstream(Path("ca2.crt")).rdbuf();
  w2.ca_file = Path("ca-and-ca2.crt");
  std::unique_ptr<InternalTls> new_worker = Make(w2);
  ASSERT_NE(new_worker, nullptr);
  EXPECT_EQ(Register(*new_worker).error_code(), grpc::StatusCode::UNAVAILABLE);

  Replace(Path("ca2.crt"), live + "/ca.crt");
  EXPECT_TRUE(EventuallyRegisters(*old_worker, grpc::StatusCode::UNAVAILABLE))
      << "a certificate of the removed CA still gets through";
  EXPECT_TRUE(Register(*new_worker).ok());
}

TEST_F(InternalTlsTest, BadOptionsNameTheFlag) {
  EXPECT_TRUE(CheckInternalTlsOptions(InternalTlsOptions{}).ok());
  InternalTlsOptions o = Options("worker", "ca", kDefaultCoordinatorIdentity);
  EXPECT_TRUE(CheckInternalTlsOptions(o).ok());

  InternalTlsOptions missing = o;
  missing.key_file.clear();
  EXPECT_THAT(CheckInternalTlsOptions(missing).message(),
              HasSubstr("--internal-tls-key: needed with --internal-tls-cert"));
  missing = o;
  missing.cert_file.clear();
  missing.key_file.clear();
  EXPECT_THAT(CheckInternalTlsOptions(missing).message(),
              HasSubstr("--internal-tls-cert: needed with --internal-tls-ca"));

  InternalTlsOptions unreadable = o;
  unreadable.cert_file = Path("absent.crt");
  EXPECT_THAT(CheckInternalTlsOptions(unreadable).message(),
              HasSubstr("--internal-tls-cert " + Path("absent.crt") + ": cannot be read"));
  InternalTlsOptions not_pem = o;
  not_pem.ca_file = Path("worker.key");
  EXPECT_THAT(CheckInternalTlsOptions(not_pem).message(),
              HasSubstr("--internal-tls-ca " + Path("worker.key") + ": no PEM certificate"));
  InternalTlsOptions wrong_key = o;
  wrong_key.key_file = Path("coordinator.key");
  EXPECT_THAT(CheckInternalTlsOptions(wrong_key).message(),
              HasSubstr(": not the key of --internal-tls-cert"));
  InternalTlsOptions other_ca = o;
  other_ca.ca_file = Path("rogue-ca.crt");
  EXPECT_THAT(CheckInternalTlsOptions(other_ca).message(),
              HasSubstr("does not verify against --internal-tls-ca"));
  for (const InternalTlsOptions& bad : {missing, unreadable, not_pem, wrong_key, other_ca}) {
    const absl::Status s = CheckInternalTlsOptions(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_FALSE(InternalTls::Create(bad).ok());
  }
}

}  // namespace
}  // namespace g4
