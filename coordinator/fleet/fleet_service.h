// Fleet gRPC service (worker.proto): Register and Heartbeat go to the FleetManager; StoreSet /
// StoreGet are the rendezvous store. Sync API: StoreGet holds a server thread while it waits.
// With check_worker_address, Register and Heartbeat take only the address the call came from
// (coordinator/fleet/worker_address_check.h).
#ifndef G4SERVE_COORDINATOR_FLEET_FLEET_SERVICE_H_
#define G4SERVE_COORDINATOR_FLEET_FLEET_SERVICE_H_

#include "coordinator/fleet/fleet_manager.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"

namespace g4 {

class FleetServiceImpl final : public g4serve::worker::v1::Fleet::Service {
 public:
  // Both must outlive the service.
  FleetServiceImpl(FleetManager* fleet, KeyValueStoreServer* store,
                   bool check_worker_address = true)
      : fleet_(fleet), store_(store), check_worker_address_(check_worker_address) {}

  grpc::Status Register(grpc::ServerContext* context,
                        const g4serve::worker::v1::RegisterRequest* request,
                        g4serve::worker::v1::RegisterResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const g4serve::worker::v1::HeartbeatRequest* request,
                         g4serve::worker::v1::HeartbeatResponse* response) override;
  grpc::Status StoreSet(grpc::ServerContext* context,
                        const g4serve::worker::v1::StoreSetRequest* request,
                        g4serve::worker::v1::StoreSetResponse* response) override;
  // Waits up to timeout_ms (and at most until the call's deadline / cancellation).
  grpc::Status StoreGet(grpc::ServerContext* context,
                        const g4serve::worker::v1::StoreGetRequest* request,
                        g4serve::worker::v1::StoreGetResponse* response) override;

 private:
  FleetManager* const fleet_;
  KeyValueStoreServer* const store_;
  const bool check_worker_address_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_FLEET_SERVICE_H_
