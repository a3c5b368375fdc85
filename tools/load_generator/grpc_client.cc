#include "tools/load_generator/grpc_client.h"

#include <limits>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace g4::load {

GrpcLoadClient::GrpcLoadClient(const LoadOptions& options) : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(std::numeric_limits<int>::max());
  stub_ = g4serve::v1::Inference::NewStub(
      grpc::CreateCustomChannel(options_.server, grpc::InsecureChannelCredentials(), args));
}

RequestResult GrpcLoadClient::Send(const RequestSpec& spec) {
  g4serve::v1::GenerateRequest request;
  request.set_request_id(absl::StrCat(options_.request_id_prefix, spec.index));
  if (!options_.model.empty()) request.set_model(options_.model);
  if (!spec.prompt_text.empty()) {
    request.set_text(spec.prompt_text);
  } else {
    request.mutable_token_ids()->mutable_ids()->Assign(spec.prompt_ids.begin(),
                                                       spec.prompt_ids.end());
  }
  request.mutable_sampling()->set_temperature(static_cast<float>(options_.temperature));
  request.mutable_stopping()->set_max_tokens(spec.max_tokens);
  request.mutable_stopping()->set_ignore_eos(options_.ignore_eos);

  RequestResult result;
  result.prompt_tokens = spec.prompt_len;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  const auto sent = ChunkTimer::Clock::now();
  ChunkTimer timer(sent);
  std::unique_ptr<grpc::ClientReader<g4serve::v1::GenerateResponse>> reader =
      stub_->Generate(&context, request);
  g4serve::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    timer.OnChunk(response.tokens_size());
    if (response.has_usage() && response.usage().prompt_tokens() > 0) {
      result.prompt_tokens = response.usage().prompt_tokens();
    }
  }
  const grpc::Status status = reader->Finish();
  timer.Finish(&result);
  if (!status.ok()) {
    result.error = absl::StrCat("gRPC ", static_cast<int>(status.error_code()), ": ",
                                status.error_message());
    return result;
  }
  result.success = true;
  return result;
}

}  // namespace g4::load
