#include "worker/service/grpc_key_value_store.h"

#include <algorithm>
#include <utility>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "proto/grpc_status.h"

namespace g4 {

GrpcKeyValueStore::GrpcKeyValueStore(std::shared_ptr<grpc::Channel> coordinator,
                                     absl::Duration rpc_timeout)
    : stub_(g4serve::worker::v1::Fleet::NewStub(std::move(coordinator))),
      rpc_timeout_(rpc_timeout) {}

absl::Status GrpcKeyValueStore::Set(absl::string_view key, absl::string_view value) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + rpc_timeout_));
  g4serve::worker::v1::StoreSetRequest req;
  req.set_key(std::string(key));
  req.set_value(std::string(value));
  g4serve::worker::v1::StoreSetResponse resp;
  const grpc::Status s = stub_->StoreSet(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("StoreSet(", key, "): ", s.error_message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> GrpcKeyValueStore::Get(absl::string_view key,
                                                   absl::Duration timeout) {
  timeout = std::max(timeout, absl::ZeroDuration());
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout + rpc_timeout_));
  g4serve::worker::v1::StoreGetRequest req;
  req.set_key(std::string(key));
  req.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  g4serve::worker::v1::StoreGetResponse resp;
  const grpc::Status s = stub_->StoreGet(&ctx, req, &resp);
  if (s.ok()) return std::move(*resp.mutable_value());
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
      s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::DeadlineExceededError(absl::StrCat("rendezvous key ", key, " not set within ",
                                                    absl::FormatDuration(timeout), " (",
                                                    s.error_message(), ")"));
  }
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("StoreGet(", key, "): ", s.error_message()));
}

}  // namespace g4
