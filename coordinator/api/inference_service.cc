#include "coordinator/api/inference_service.h"

#include <utility>

#include "absl/time/clock.h"
#include "proto/grpc_status.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;

}  // namespace

InferenceServiceImpl::InferenceServiceImpl(InferenceOptions options, const TextCodec* codec,
                                           const FleetManager* fleet, Router* router)
    : generation_(std::move(options), codec, fleet, router) {}

grpc::Status InferenceServiceImpl::Generate(grpc::ServerContext* context,
                                            const pb::GenerateRequest* request,
                                            grpc::ServerWriter<pb::GenerateResponse>* writer) {
  GenerationSink sink;
  sink.arrival = absl::Now();
  sink.write = [writer](const pb::GenerateResponse& r) { return writer->Write(r); };
  sink.cancelled = [context] { return context->IsCancelled(); };
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    sink.deadline = absl::FromChrono(context->deadline());
  }
  return ToGrpcStatus(generation_.Generate(*request, sink));
}

grpc::Status InferenceServiceImpl::Tokenize(grpc::ServerContext* context,
                                            const pb::TokenizeRequest* request,
                                            pb::TokenizeResponse* response) {
  absl::Status status = generation_.CheckModel(request->model());
  if (!status.ok()) return ToGrpcStatus(status);
  const TextCodec* codec = generation_.codec();
  if (codec == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError("model has no tokenizer"));
  }
  absl::StatusOr<std::vector<int32_t>> ids =
      codec->Encode(request->text(), request->add_special_tokens());
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::ListModels(grpc::ServerContext* context,
                                              const pb::ListModelsRequest* request,
                                              pb::ListModelsResponse* response) {
  const FleetManager* fleet = generation_.fleet();
  pb::ModelInfo* model = response->add_models();
  model->set_id(generation_.options().model_id);
  model->set_max_context(fleet->MaxContext());
  model->set_replicas_ready(fleet->ReadyReplicas());
  model->set_replicas_total(fleet->TotalReplicas());
  for (const ReplicaStatus& r : fleet->Replicas()) {
    pb::ReplicaInfo* info = model->add_replicas();
    info->set_index(r.index);
    info->set_state(std::string(ReplicaStateName(r.state)));
    info->set_error(r.error);
  }
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::Abort(grpc::ServerContext* context,
                                         const pb::AbortRequest* request,
                                         pb::AbortResponse* response) {
  response->set_found(generation_.Abort(request->request_id()));
  return grpc::Status::OK;
}

}  // namespace g4
