// A replica's status as the public API shows it (ListModels' ModelInfo.replicas, the HTTP
// /health body): state, and when it is not READY, why and when it is tried again.
#ifndef G4SERVE_COORDINATOR_FLEET_REPLICA_INFO_H_
#define G4SERVE_COORDINATOR_FLEET_REPLICA_INFO_H_

#include "absl/time/time.h"
#include "coordinator/fleet/fleet_manager.h"
#include "g4serve/v1/inference.pb.h"

namespace g4 {

// retry_in_seconds is counted from `now`.
g4serve::v1::ReplicaInfo ToReplicaInfo(const ReplicaStatus& status, absl::Time now);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_REPLICA_INFO_H_
