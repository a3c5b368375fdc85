#include "coordinator/api/reflection_v1_service.h"

#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/rpc_service_method.h"
#include "grpcpp/support/method_handler.h"

namespace g4 {
namespace {

// Waits for the completion of the operation tagged `tag` on `cq`; false when it failed.
bool Await(grpc::CompletionQueue& cq, void* tag) {
  void* got = nullptr;
  bool ok = false;
  if (!cq.Next(&got, &ok)) return false;
  return got == tag && ok;
}

}  // namespace

ReflectionV1Service::ReflectionV1Service() {
  AddMethod(new grpc::internal::RpcServiceMethod(
      kReflectionV1Method, grpc::internal::RpcMethod::BIDI_STREAMING,
      new grpc::internal::BidiStreamingHandler<ReflectionV1Service, grpc::ByteBuffer,
                                               grpc::ByteBuffer>(
          [](ReflectionV1Service* service, grpc::ServerContext* context,
             grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream) {
            return service->Relay(context, stream);
          },
          this)));
}

void ReflectionV1Service::SetV1AlphaChannel(std::shared_ptr<grpc::Channel> channel) {
  absl::MutexLock lock(&mu_);
  channel_ = std::move(channel);
}

grpc::Status ReflectionV1Service::Relay(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream) {
  std::shared_ptr<grpc::Channel> channel;
  {
    absl::MutexLock lock(&mu_);
    channel = channel_;
  }
  if (channel == nullptr) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "reflection is not ready yet");
  }
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext inner;
  inner.set_deadline(context->deadline());
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call =
      stub.PrepareCall(&inner, kReflectionV1AlphaMethod, &cq);
  int start, write, read, done, finish;  // their addresses are the tags
  call->StartCall(&start);
  grpc::Status status = grpc::Status::OK;
  if (Await(cq, &start)) {
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
    // One answer per request (the reflection protocol).
    while (!context->IsCancelled() && stream->Read(&request)) {
      call->Write(request, &write);
      if (!Await(cq, &write)) break;
      call->Read(&response, &read);
      if (!Await(cq, &read) || !stream->Write(response)) break;
    }
    call->WritesDone(&done);
    Await(cq, &done);
  }
  call->Finish(&status, &finish);
  Await(cq, &finish);
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace g4
