#include "coordinator/fleet/replica_info.h"

#include <algorithm>
#include <string>

namespace g4 {

g4serve::v1::ReplicaInfo ToReplicaInfo(const ReplicaStatus& status, absl::Time now) {
  g4serve::v1::ReplicaInfo info;
  info.set_index(status.index);
  info.set_state(std::string(ReplicaStateName(status.state)));
  info.set_reason(status.reason);
  info.set_error(status.error);
  info.set_failures(status.failures);
  if (status.retry_at.has_value()) {
    info.set_retry_in_seconds(std::max(0.0, absl::ToDoubleSeconds(*status.retry_at - now)));
  }
  info.set_recoveries(status.recoveries);
  return info;
}

}  // namespace g4
