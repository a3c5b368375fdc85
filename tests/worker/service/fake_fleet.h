// An in-process stand-in for the coordinator's Fleet service: records registrations and serves
// the rendezvous store from memory, so worker tests need no coordinator.
#ifndef G4SERVE_TESTS_WORKER_SERVICE_FAKE_FLEET_H_
#define G4SERVE_TESTS_WORKER_SERVICE_FAKE_FLEET_H_

#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "proto/grpc_status.h"
#include "worker/comm/key_value_store.h"

namespace g4::testing {

class FakeFleet final : public ::g4serve::worker::v1::Fleet::Service {
 public:
  grpc::Status Register(grpc::ServerContext*, const ::g4serve::worker::v1::RegisterRequest* request,
                        ::g4serve::worker::v1::RegisterResponse* response) override {
    absl::MutexLock lock(&mu_);
    registered_.push_back(*request);
    response->set_worker_id(absl::StrCat("w", registered_.size() - 1));
    return grpc::Status::OK;
  }
  grpc::Status StoreSet(grpc::ServerContext*, const ::g4serve::worker::v1::StoreSetRequest* request,
                        ::g4serve::worker::v1::StoreSetResponse*) override {
    return ToGrpcStatus(store_.Set(request->key(), request->value()));
  }
  grpc::Status StoreGet(grpc::ServerContext*, const ::g4serve::worker::v1::StoreGetRequest* request,
                        ::g4serve::worker::v1::StoreGetResponse* response) override {
    absl::StatusOr<std::string> v =
        store_.Get(request->key(), absl::Milliseconds(request->timeout_ms()));
    if (!v.ok()) return ToGrpcStatus(v.status());
    response->set_value(*v);
    return grpc::Status::OK;
  }

  std::vector<::g4serve::worker::v1::RegisterRequest> registered() {
    absl::MutexLock lock(&mu_);
    return registered_;
  }

 private:
  InMemoryKeyValueStore store_;
  absl::Mutex mu_;
  std::vector<::g4serve::worker::v1::RegisterRequest> registered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_WORKER_SERVICE_FAKE_FLEET_H_
