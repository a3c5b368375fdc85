#include "coordinator/fleet/fleet_service.h"

#include <string>

#include "absl/status/status.h"
#include "coordinator/fleet/worker_address_check.h"
#include "proto/grpc_status.h"

namespace g4 {

namespace wpb = ::g4serve::worker::v1;

grpc::Status FleetServiceImpl::Register(grpc::ServerContext* context,
                                        const wpb::RegisterRequest* request,
                                        wpb::RegisterResponse* response) {
  if (check_worker_address_ && !request->address().empty()) {
    absl::Status mine = CheckAddressIsPeer(request->address(), context->peer());
    if (!mine.ok()) return ToGrpcStatus(mine);
  }
  absl::StatusOr<std::string> id = fleet_->Register(*request);
  if (!id.ok()) return ToGrpcStatus(id.status());
  response->set_worker_id(*id);
  return grpc::Status::OK;
}

grpc::Status FleetServiceImpl::Heartbeat(grpc::ServerContext* context,
                                         const wpb::HeartbeatRequest* request,
                                         wpb::HeartbeatResponse* response) {
  if (check_worker_address_) {
    absl::Status mine = CheckAddressIsPeer(request->address(), context->peer());
    if (!mine.ok()) return ToGrpcStatus(mine);
  }
  return ToGrpcStatus(fleet_->Heartbeat(request->worker_id(), request->address()));
}

grpc::Status FleetServiceImpl::StoreSet(grpc::ServerContext* context,
                                        const wpb::StoreSetRequest* request,
                                        wpb::StoreSetResponse* response) {
  return ToGrpcStatus(store_->Set(request->key(), request->value()));
}

grpc::Status FleetServiceImpl::StoreGet(grpc::ServerContext* context,
                                        const wpb::StoreGetRequest* request,
                                        wpb::StoreGetResponse* response) {
  absl::StatusOr<std::string> value =
      store_->Get(request->key(), absl::Milliseconds(request->timeout_ms()),
                  [context] { return context->IsCancelled(); });
  if (!value.ok()) return ToGrpcStatus(value.status());
  response->set_value(*std::move(value));
  return grpc::Status::OK;
}

}  // namespace g4
