// Mid-stream migration: when the replica serving a request fails or leaves service, the
// coordinator continues the same stream on another replica. It resubmits the prompt plus the
// tokens the client already received (WorkerGenerateRequest.resume_output_token_ids); the new
// leader computes them and continues sampling where the first one stopped (the sampler's step
// index, penalties and min/max_tokens count them), so greedy and seeded output equal the
// uninterrupted run, and the client sees every token once. Details: docs/coordinator.md
// ("Migration"); the worker side: docs/worker.md.
//
// This file holds the decisions; GenerationService (generation.h) carries them out.
#ifndef G4SERVE_COORDINATOR_API_MIGRATION_H_
#define G4SERVE_COORDINATOR_API_MIGRATION_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "coordinator/router/router.h"
#include "g4serve/worker/v1/worker.pb.h"

namespace g4 {

// How many times one request may move to another replica (Dynamo's --migration-limit); the
// request fails with the last error after that.
inline constexpr int kDefaultMigrationLimit = 3;

// Why a request moved (request_migrations_total's reason label).
enum class MigrationReason {
  kStreamFailed,        // the worker stream ended with an error a healthy replica may not have
  kReplicaUnavailable,  // the health loop took the replica out of service; the coordinator
                        // cancelled the stream
};
const char* MigrationReasonName(MigrationReason reason);  // "stream_failed", ...

// The reason to continue a request whose worker stream ended with `status` and no final
// response, or nullopt when the error is the request's own and goes to the client.
// `evacuated`: the coordinator cancelled the stream because its replica left service.
// Migrated: UNAVAILABLE (the worker died, its replica failed, it drains), FAILED_PRECONDITION
// (the worker is no longer a ready leader), ABORTED, UNKNOWN (a broken connection). Not:
// INVALID_ARGUMENT, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, CANCELLED (the client's), INTERNAL,
// and the rest.
std::optional<MigrationReason> MigrationFor(const absl::Status& status, bool evacuated);

// Replicas whose streams the coordinator moves away: out of service (not READY, not DRAINING —
// a draining replica finishes its streams) while at least one replica is READY to take them.
// (GenerationService moves a stream only once it also stopped delivering: a replica that misses
// health checks on an overloaded host but still streams keeps its streams.)
// With no replica READY the streams wait for their replica (a stall that ends lets them go on),
// but not longer than `stall_limit` after it left service: then they are moved too, and fail
// with UNAVAILABLE when no replica can take them — no stream waits forever.
absl::flat_hash_set<int> ReplicasToEvacuate(const std::vector<ReplicaEndpoint>& replicas,
                                            absl::Time now, absl::Duration stall_limit);

// Sets the tokens already relayed to the client as the request's resumed output.
void SetResumedTokens(const std::vector<int32_t>& relayed,
                      g4serve::worker::v1::WorkerGenerateRequest* request);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_MIGRATION_H_
