// grpc.reflection.v1 answers like v1alpha (the same bytes): list_services and
// file_containing_symbol through the v1 method, as grpcurl and other v1-first clients ask.
#include "coordinator/api/reflection_v1_service.h"

#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "coordinator/api/inference_service.h"
#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/router/router.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/coordinator/coordinator_test_util.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

std::string ToString(const grpc::ByteBuffer& buffer) {
  grpc::Slice slice;
  EXPECT_TRUE(buffer.DumpToSingleSlice(&slice).ok());
  return std::string(reinterpret_cast<const char*>(slice.begin()), slice.size());
}

// One request/answer on `method`. `request` is a serialized ServerReflectionRequest.
std::string Ask(grpc::GenericStub& stub, const std::string& method, const std::string& request,
                grpc::Status* status) {
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  auto call = stub.PrepareCall(&ctx, method, &cq);
  void* tag;
  bool ok;
  int t[5];
  call->StartCall(&t[0]);
  cq.Next(&tag, &ok);
  grpc::Slice slice(request);
  call->Write(grpc::ByteBuffer(&slice, 1), &t[1]);
  cq.Next(&tag, &ok);  // fails when the server already answered with an error
  grpc::ByteBuffer response;
  call->Read(&response, &t[2]);
  const bool got = cq.Next(&tag, &ok) && ok;
  call->WritesDone(&t[3]);
  cq.Next(&tag, &ok);
  call->Finish(status, &t[4]);
  cq.Next(&tag, &ok);
  return got ? ToString(response) : "";
}

TEST(ReflectionV1Test, AnswersLikeV1Alpha) {
  KeyValueStoreServer store;
  FleetOptions o;
  o.model_config = testing::TinyConfig();
  o.log = [](const std::string&) {};
  FleetManager fleet(o, &store);
  Router router(&fleet);
  InferenceOptions io;
  io.model_id = "dense";
  InferenceServiceImpl inference(io, nullptr, &fleet, &router);
  ReflectionV1Service v1;
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&inference);
  builder.RegisterService(&v1);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  grpc::GenericStub stub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                             grpc::InsecureChannelCredentials()));
  // Before the channel is set: UNAVAILABLE, not a hang.
  grpc::Status status;
  const std::string kListServices("\x3a\x00", 2);  // list_services = ""
  Ask(stub, kReflectionV1Method, kListServices, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);

  v1.SetV1AlphaChannel(server->InProcessChannel(grpc::ChannelArguments()));
  const std::string v1_list = Ask(stub, kReflectionV1Method, kListServices, &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(v1_list, HasSubstr("g4serve.v1.Inference"));
  EXPECT_THAT(v1_list, HasSubstr("grpc.reflection.v1.ServerReflection"));
  EXPECT_EQ(v1_list, Ask(stub, kReflectionV1AlphaMethod, kListServices, &status));

  // file_containing_symbol = "g4serve.v1.Inference": the descriptor of inference.proto.
  const std::string symbol = "g4serve.v1.Inference";
  const std::string by_symbol =
      std::string("\x22", 1) + static_cast<char>(symbol.size()) + symbol;
  const std::string file = Ask(stub, kReflectionV1Method, by_symbol, &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(file, HasSubstr("g4serve/v1/inference.proto"));
  EXPECT_THAT(file, HasSubstr("GenerateRequest"));
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace g4
