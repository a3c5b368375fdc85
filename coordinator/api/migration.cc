#include "coordinator/api/migration.h"

namespace g4 {

const char* MigrationReasonName(MigrationReason reason) {
  switch (reason) {
    case MigrationReason::kStreamFailed:
      return "stream_failed";
    case MigrationReason::kReplicaUnavailable:
      return "replica_unavailable";
  }
  return "unknown";
}

std::optional<MigrationReason> MigrationFor(const absl::Status& status, bool evacuated) {
  if (evacuated) return MigrationReason::kReplicaUnavailable;
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kUnknown:
      return MigrationReason::kStreamFailed;
    default:
      return std::nullopt;
  }
}

absl::flat_hash_set<int> ReplicasToEvacuate(const std::vector<ReplicaEndpoint>& replicas,
                                            absl::Time now, absl::Duration stall_limit) {
  absl::flat_hash_set<int> out;
  bool any_ready = false;
  for (const ReplicaEndpoint& r : replicas) any_ready = any_ready || r.ready;
  for (const ReplicaEndpoint& r : replicas) {
    if (r.ready || r.draining) continue;
    if (any_ready || now - r.since >= stall_limit) out.insert(r.index);
  }
  return out;
}

void SetResumedTokens(const std::vector<int32_t>& relayed,
                      g4serve::worker::v1::WorkerGenerateRequest* request) {
  request->mutable_resume_output_token_ids()->Assign(relayed.begin(), relayed.end());
}

}  // namespace g4
