// Mutual TLS on the internal plane with real processes (docs/security.md): a coordinator and two
// workers with certificates of one CA form a replica and serve; a worker without a certificate,
// or with one of another CA, cannot register or touch the store, and a certificate of the CA
// that is not the coordinator's cannot call a worker. The replica serves before and after.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/internal_tls.h"
#include "tests/integration/cluster.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_certificates.h"
#include "tests/worker/model/golden_reference.h"

namespace g4::testing {
namespace {

namespace wv1 = ::g4serve::worker::v1;
using ::testing::HasSubstr;

std::vector<std::string> TlsFlags(const std::string& dir, const std::string& name,
                                  const std::string& ca) {
  return {"--internal-tls-cert", dir + "/" + name + ".crt", "--internal-tls-key",
          dir + "/" + name + ".key", "--internal-tls-ca", dir + "/" + ca + ".crt"};
}

// This test process as a client of the internal plane: the certificate NAME of the files in
// `dir`, trusting `ca`, requiring `peer`; plaintext for an empty name.
std::unique_ptr<InternalTls> Client(const std::string& dir, const std::string& name,
                                    const std::string& ca, const std::string& peer) {
  InternalTlsOptions o;
  if (!name.empty()) {
    o.cert_file = dir + "/" + name + ".crt";
    o.key_file = dir + "/" + name + ".key";
    o.ca_file = dir + "/" + ca + ".crt";
  }
  o.peer_name = peer;
  absl::StatusOr<std::unique_ptr<InternalTls>> tls = InternalTls::Create(o);
  EXPECT_TRUE(tls.ok()) << tls.status();
  return tls.ok() ? *std::move(tls) : nullptr;
}

std::shared_ptr<grpc::Channel> Dial(const InternalTls& tls, const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a handshake of its own
  return tls.Dial(address, args);
}

template <typename Request, typename Response, typename Method>
grpc::StatusCode Call(Method method, const Request& request) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  Response response;
  return method(&ctx, request, &response).error_code();
}

// Register, StoreSet and StoreGet on the coordinator's internal port, all with `tls`.
std::vector<grpc::StatusCode> FleetCalls(const InternalTls& tls, const std::string& address) {
  auto fleet = wv1::Fleet::NewStub(Dial(tls, address));
  wv1::RegisterRequest reg;
  reg.set_address("127.0.0.1:1");
  wv1::StoreSetRequest set;
  set.set_key("replica0/load0/rank1");
  set.set_value("x");
  wv1::StoreGetRequest get;
  get.set_key("replica0/load0/rank0");
  get.set_timeout_ms(1);
  auto* f = fleet.get();
  return {
      Call<wv1::RegisterRequest, wv1::RegisterResponse>(
          [f](auto* c, const auto& q, auto* r) { return f->Register(c, q, r); }, reg),
      Call<wv1::StoreSetRequest, wv1::StoreSetResponse>(
          [f](auto* c, const auto& q, auto* r) { return f->StoreSet(c, q, r); }, set),
      Call<wv1::StoreGetRequest, wv1::StoreGetResponse>(
          [f](auto* c, const auto& q, auto* r) { return f->StoreGet(c, q, r); }, get)};
}

// Load, Generate (its stream's status), Abort and Unload on a worker, all with `tls`.
std::vector<grpc::StatusCode> WorkerCalls(const InternalTls& tls, const std::string& address) {
  auto worker = wv1::Worker::NewStub(Dial(tls, address));
  auto* w = worker.get();
  wv1::LoadRequest load;
  load.set_model_dir("tests/data/golden/dense");
  std::vector<grpc::StatusCode> codes = {Call<wv1::LoadRequest, wv1::LoadResponse>(
      [w](auto* c, const auto& q, auto* r) { return w->Load(c, q, r); }, load)};
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    wv1::WorkerGenerateRequest generate;
    generate.set_request_id("rogue");
    generate.add_prompt_token_ids(2);
    auto reader = w->Generate(&ctx, generate);
    wv1::WorkerGenerateResponse response;
    while (reader->Read(&response)) {
    }
    codes.push_back(reader->Finish().error_code());
  }
  codes.push_back(Call<wv1::WorkerAbortRequest, wv1::WorkerAbortResponse>(
      [w](auto* c, const auto& q, auto* r) { return w->Abort(c, q, r); },
      wv1::WorkerAbortRequest()));
  codes.push_back(Call<wv1::UnloadRequest, wv1::UnloadResponse>(
      [w](auto* c, const auto& q, auto* r) { return w->Unload(c, q, r); }, wv1::UnloadRequest()));
  return codes;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(InternalTlsClusterTest, RogueWorkersCannotJoinAndTheReplicaKeepsServing) {
  const ScopedTempDir temp_dir("internal_tls_cluster");
  const std::string& dir = temp_dir.path();
  ASSERT_TRUE(MakeTestCertificates(dir));
  ClusterOptions options;
  options.model = GoldenDir("dense");
  options.extra_coordinator_flags = TlsFlags(dir, "coordinator", "ca");
  options.extra_worker_flags = TlsFlags(dir, "worker", "ca");
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(1));
  EXPECT_THAT(cluster.coordinator().Log(), HasSubstr("mutual TLS"));
  EXPECT_THAT(cluster.coordinator().Log(), ::testing::Not(HasSubstr("WARNING: the internal")));

  g4serve::v1::GenerateRequest request;
  request.set_text("Hello");
  request.mutable_stopping()->set_max_tokens(4);
  request.mutable_sampling()->set_temperature(0);  // greedy: the same tokens before and after
  Cluster::Result before = cluster.Generate(request);
  ASSERT_TRUE(before.status.ok()) << before.status.error_message() << "\n" << cluster.Logs();
  const int registrations = Count(cluster.coordinator().Log(), " registered: ");
  EXPECT_EQ(registrations, 2);

  using Codes = std::vector<grpc::StatusCode>;
  const Codes unavailable3(3, grpc::StatusCode::UNAVAILABLE);
  const Codes unavailable4(4, grpc::StatusCode::UNAVAILABLE);
  const std::string internal = cluster.internal_address();
  const std::string worker0 = absl::StrCat("127.0.0.1:", cluster.WorkerPort(0));

  // Without a certificate: no handshake, so no registration, no store, no Worker call.
  std::unique_ptr<InternalTls> plaintext = Client(dir, "", "", kDefaultCoordinatorIdentity);
  EXPECT_EQ(FleetCalls(*plaintext, internal), unavailable3);
  EXPECT_EQ(WorkerCalls(*plaintext, worker0), unavailable4);
  // A certificate of another CA naming the worker identity (trusting the real CA as well).
  std::ofstream(dir + "/both.crt") << std::ifstream(dir + "/ca.crt").rdbuf()
                                   << std::ifstream(dir + "/rogue-ca.crt").rdbuf();
  std::unique_ptr<InternalTls> rogue =
      Client(dir, "rogue-worker", "both", kDefaultCoordinatorIdentity);
  EXPECT_EQ(FleetCalls(*rogue, internal), unavailable3);
  std::unique_ptr<InternalTls> rogue_to_worker =
      Client(dir, "rogue-worker", "both", kDefaultWorkerIdentity);
  EXPECT_EQ(WorkerCalls(*rogue_to_worker, worker0), unavailable4);
  // The CA's coordinator certificate is not a worker's: the Fleet service refuses it.
  std::unique_ptr<InternalTls> not_a_worker =
      Client(dir, "coordinator", "ca", kDefaultCoordinatorIdentity);
  EXPECT_EQ(FleetCalls(*not_a_worker, internal), Codes(3, grpc::StatusCode::PERMISSION_DENIED));
  // A worker's certificate is not the coordinator's: a worker takes no Load, Generate, Abort or
  // Unload from it (a compromised worker cannot drive another one).
  std::unique_ptr<InternalTls> a_worker = Client(dir, "worker", "ca", kDefaultWorkerIdentity);
  EXPECT_EQ(WorkerCalls(*a_worker, worker0), Codes(4, grpc::StatusCode::PERMISSION_DENIED));
  // The worker's certificate does reach the store, which refuses keys outside a load.
  std::unique_ptr<InternalTls> worker = Client(dir, "worker", "ca", kDefaultCoordinatorIdentity);
  auto fleet = wv1::Fleet::NewStub(Dial(*worker, internal));
  wv1::StoreGetRequest get;
  get.set_key("replica0/absent");
  get.set_timeout_ms(1);
  EXPECT_EQ((Call<wv1::StoreGetRequest, wv1::StoreGetResponse>(
                [&](auto* c, const auto& q, auto* r) { return fleet->StoreGet(c, q, r); }, get)),
            grpc::StatusCode::FAILED_PRECONDITION);
  // A compromised worker (the workers' certificate) cannot register another host's address
  // and have requests sent there: its call comes from 127.0.0.1 (--worker-address-check).
  wv1::RegisterRequest elsewhere;
  elsewhere.set_address(absl::StrCat("127.0.0.2:", cluster.WorkerPort(1)));
  EXPECT_EQ((Call<wv1::RegisterRequest, wv1::RegisterResponse>(
                [&](auto* c, const auto& q, auto* r) { return fleet->Register(c, q, r); },
                elsewhere)),
            grpc::StatusCode::PERMISSION_DENIED);

  // Real g4-worker processes: without TLS flags, and with the rogue CA's certificate. Neither
  // registers; both give up after --register-timeout.
  const std::vector<std::vector<std::string>> rogues = {
      {}, TlsFlags(dir, "rogue-worker", "both")};
  for (size_t i = 0; i < rogues.size(); ++i) {
    std::vector<std::string> argv = {G4_WORKER_BIN, "--coordinator", internal, "--host",
                                     "127.0.0.1", "--port", "0", "--threads", "1",
                                     "--register-timeout", "3s"};
    argv.insert(argv.end(), rogues[i].begin(), rogues[i].end());
    Process process;
    ASSERT_TRUE(process.Start(argv, absl::StrCat(cluster.dir(), "/rogue", i, ".log")));
    EXPECT_NE(process.Wait(absl::Seconds(30)), 0) << process.Log();
    EXPECT_THAT(process.Log(), HasSubstr("did not answer within")) << process.Log();
  }
  EXPECT_EQ(Count(cluster.coordinator().Log(), " registered: "), registrations)
      << cluster.coordinator().Log();

  Cluster::Result after = cluster.Generate(request);
  ASSERT_TRUE(after.status.ok()) << after.status.error_message() << "\n" << cluster.Logs();
  EXPECT_EQ(after.tokens, before.tokens);
  EXPECT_EQ(cluster.ReadyReplicas(), 1);
  std::filesystem::remove_all(dir);
}

// Without the flags both binaries say loudly that the internal plane is open; with only some of
// the three files they stop at start (exit 2, a flag error), naming the missing flag.
TEST(InternalTlsClusterTest, MissingFilesStopTheBinariesAndNoFlagsWarn) {
  const ScopedTempDir temp_dir("internal_tls_flags");
  const std::string& dir = temp_dir.path();
  ASSERT_TRUE(MakeTestCertificates(dir));
  Process coordinator;
  ASSERT_TRUE(coordinator.Start(
      {G4_COORDINATOR_BIN, "--model", GoldenDir("dense"), "--port", "0", "--internal-port", "0",
       "--internal-tls-cert", dir + "/coordinator.crt", "--internal-tls-ca", dir + "/ca.crt"},
      dir + "/coordinator.log"));
  EXPECT_EQ(coordinator.Wait(absl::Seconds(30)), 2) << coordinator.Log();
  EXPECT_THAT(coordinator.Log(), HasSubstr("--internal-tls-key: needed with --internal-tls-cert"));
  Process worker;
  ASSERT_TRUE(worker.Start({G4_WORKER_BIN, "--coordinator", "127.0.0.1:1", "--internal-tls-key",
                            dir + "/worker.key"},
                           dir + "/worker.log"));
  EXPECT_EQ(worker.Wait(absl::Seconds(30)), 2) << worker.Log();
  EXPECT_THAT(worker.Log(), HasSubstr("--internal-tls-cert: needed with --internal-tls-key"));

  ClusterOptions options;
  options.model = GoldenDir("dense");
  options.workers = 1;
  options.tensor_parallel_size = 1;
  Cluster cluster(options);
  ASSERT_TRUE(cluster.Start(1));
  EXPECT_THAT(cluster.coordinator().Log(),
              HasSubstr("is unauthenticated and unencrypted (no --internal-tls-cert)"));
  EXPECT_THAT(cluster.worker(0).Log(),
              HasSubstr("are unauthenticated and unencrypted (no --internal-tls-cert)"));
  std::filesystem::remove_all(dir);
}

// --tls-cert / --tls-key: the public gRPC port speaks TLS (clients verify it against the CA);
// a plaintext client gets no answer. The HTTP port is not covered (docs/security.md).
TEST(PublicTlsTest, TheGrpcPortServesTls) {
  const ScopedTempDir temp_dir("public_tls");
  const std::string& dir = temp_dir.path();
  ASSERT_TRUE(MakeTestCertificates(dir));
  Process coordinator;
  ASSERT_TRUE(coordinator.Start({G4_COORDINATOR_BIN, "--model", GoldenDir("dense"), "--host",
                                 "127.0.0.1", "--port", "0", "--port-file", dir + "/port",
                                 "--tls-cert", dir + "/coordinator.crt", "--tls-key",
                                 dir + "/coordinator.key"},
                                dir + "/coordinator.log"));
  const int port = WaitForPortFile(dir + "/port", absl::Seconds(20));
  ASSERT_GT(port, 0) << coordinator.Log();
  EXPECT_THAT(coordinator.Log(), HasSubstr("public gRPC on 127.0.0.1:" + std::to_string(port) +
                                           ": TLS"));
  const std::string address = absl::StrCat("127.0.0.1:", port);
  auto list = [&](std::shared_ptr<grpc::ChannelCredentials> credentials) {
    auto stub = g4serve::v1::Inference::NewStub(grpc::CreateChannel(address, credentials));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    g4serve::v1::ListModelsResponse response;
    return stub->ListModels(&ctx, g4serve::v1::ListModelsRequest(), &response);
  };
  std::ifstream ca_file(dir + "/ca.crt");
  std::stringstream ca;
  ca << ca_file.rdbuf();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca.str();
  const grpc::Status tls = list(grpc::SslCredentials(ssl));
  EXPECT_TRUE(tls.ok()) << tls.error_message() << "\n" << coordinator.Log();
  EXPECT_EQ(list(grpc::InsecureChannelCredentials()).error_code(), grpc::StatusCode::UNAVAILABLE);
  coordinator.Kill(SIGTERM);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace g4::testing
