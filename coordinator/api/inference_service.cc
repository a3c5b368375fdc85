#include "coordinator/api/inference_service.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "coordinator/api/request_limits.h"
#include "coordinator/fleet/replica_info.h"
#include "proto/grpc_status.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;

// The identity of the key the call carries (see GrpcCaller); "" without keys.
absl::StatusOr<std::string> KeyIdentity(const grpc::ServerContext& context, const ApiKeys* keys) {
  if (keys == nullptr || !keys->enabled()) return std::string();
  const auto& metadata = context.client_metadata();
  std::optional<absl::string_view> authorization;
  if (auto it = metadata.find(kAuthorizationMetadataKey); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return keys->Authenticate(authorization);
}

}  // namespace

absl::Status CheckGrpcApiKey(const grpc::ServerContext& context, const ApiKeys* keys) {
  return KeyIdentity(context, keys).status();
}

absl::StatusOr<std::string> GrpcCaller(const grpc::ServerContext& context, const ApiKeys* keys) {
  absl::StatusOr<std::string> identity = KeyIdentity(context, keys);
  if (!identity.ok()) return identity.status();
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find(kNamespaceMetadataKey); it != metadata.end()) {
    if (it->second.size() > kMaxNamespaceBytes) {
      return absl::InvalidArgumentError(absl::StrCat(kNamespaceMetadataKey, ": at most ",
                                                     kMaxNamespaceBytes, " bytes, got ",
                                                     it->second.size()));
    }
    const std::string ns =
        absl::StrCat("ns:", absl::string_view(it->second.data(), it->second.size()));
    return identity->empty() ? ns : absl::StrCat(*identity, "/", ns);
  }
  if (!identity->empty()) return *identity;
  // "ipv4:10.0.0.7:53422" / "ipv6:[::1]:53422" → the host without the port: every connection
  // from one host is one caller.
  const std::string peer = context.peer();
  if (absl::StartsWith(peer, "ipv4:") || absl::StartsWith(peer, "ipv6:")) {
    const size_t colon = peer.rfind(':');
    if (colon > 5) return absl::StrCat("peer:", peer.substr(0, colon));
  }
  return absl::StrCat("peer:", peer);
}

InferenceServiceImpl::InferenceServiceImpl(InferenceOptions options, const TextCodec* codec,
                                           const FleetManager* fleet, Router* router)
    : generation_(std::move(options), codec, fleet, router) {}

grpc::Status InferenceServiceImpl::Generate(grpc::ServerContext* context,
                                            const pb::GenerateRequest* request,
                                            grpc::ServerWriter<pb::GenerateResponse>* writer) {
  absl::StatusOr<std::string> caller = GrpcCaller(*context, api_keys_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  GenerationSink sink;
  sink.arrival = absl::Now();
  sink.write = [writer](const pb::GenerateResponse& r) { return writer->Write(r); };
  sink.cancelled = [context] { return context->IsCancelled(); };
  if (context->deadline() != std::chrono::system_clock::time_point::max()) {
    sink.deadline = absl::FromChrono(context->deadline());
  }
  return ToGrpcStatus(generation_.Generate(*caller, *request, sink));
}

grpc::Status InferenceServiceImpl::Tokenize(grpc::ServerContext* context,
                                            const pb::TokenizeRequest* request,
                                            pb::TokenizeResponse* response) {
  if (absl::Status s = CheckGrpcApiKey(*context, api_keys_); !s.ok()) return ToGrpcStatus(s);
  absl::Status status = generation_.CheckModel(request->model());
  if (!status.ok()) return ToGrpcStatus(status);
  const TextCodec* codec = generation_.codec();
  if (codec == nullptr) {
    return ToGrpcStatus(absl::FailedPreconditionError("model has no tokenizer"));
  }
  // Tokenize is for prompts: the same bounds (the context, and its byte bound first).
  absl::StatusOr<std::vector<int32_t>> ids;
  const int64_t max_context = generation_.fleet()->MaxContext();
  if (max_context > 0) {
    const int64_t max_bytes = MaxPromptTextBytes(max_context, codec->MaxInputBytesPerToken());
    if (max_bytes >= 0 && static_cast<int64_t>(request->text().size()) > max_bytes) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("text: ", request->text().size(), " bytes cannot be at most ",
                       max_context, " tokens (the maximum context)")));
    }
    ids = codec->EncodeAtMost(request->text(), request->add_special_tokens(), max_context);
    if (ids.status().code() == absl::StatusCode::kOutOfRange) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
          "text: more than ", max_context, " tokens (the maximum context)")));
    }
  } else {
    ids = codec->Encode(request->text(), request->add_special_tokens());
  }
  if (!ids.ok()) return ToGrpcStatus(ids.status());
  response->mutable_token_ids()->Add(ids->begin(), ids->end());
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::ListModels(grpc::ServerContext* context,
                                              const pb::ListModelsRequest* request,
                                              pb::ListModelsResponse* response) {
  if (absl::Status s = CheckGrpcApiKey(*context, api_keys_); !s.ok()) return ToGrpcStatus(s);
  const FleetManager* fleet = generation_.fleet();
  pb::ModelInfo* model = response->add_models();
  model->set_id(generation_.options().model_id);
  model->set_max_context(fleet->MaxContext());
  model->set_replicas_ready(fleet->ReadyReplicas());
  model->set_replicas_total(fleet->TotalReplicas());
  const absl::Time now = absl::Now();
  for (const ReplicaStatus& r : fleet->Replicas()) *model->add_replicas() = ToReplicaInfo(r, now);
  return grpc::Status::OK;
}

grpc::Status InferenceServiceImpl::Abort(grpc::ServerContext* context,
                                         const pb::AbortRequest* request,
                                         pb::AbortResponse* response) {
  absl::StatusOr<std::string> caller = GrpcCaller(*context, api_keys_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  response->set_found(generation_.Abort(*caller, request->request_id()));
  return grpc::Status::OK;
}

}  // namespace g4
