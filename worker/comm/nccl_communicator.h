// NCCL backend of Communicator: GPU collectives. Data pointers are DEVICE memory on
// `NcclOptions::device`. Built only when CUDA is present (target g4_comm_nccl). This header
// includes no CUDA or NCCL header.
//
// Every call enqueues the collective on the communicator's own stream and waits for it, polling the
// stream and ncclCommGetAsyncError until the deadline; on timeout or error the communicator is
// aborted (ncclCommAbort) and the call returns DEADLINE_EXCEEDED / UNAVAILABLE. Initialisation is
// non-blocking (ncclCommInitRankConfig with blocking = 0) and bounded the same way.
#ifndef G4SERVE_WORKER_COMM_NCCL_COMMUNICATOR_H_
#define G4SERVE_WORKER_COMM_NCCL_COMMUNICATOR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/comm/key_value_store.h"

namespace g4 {

inline constexpr int kNcclUniqueIdBytes = 128;  // sizeof(ncclUniqueId)

struct NcclOptions {
  int rank = 0;
  int size = 1;
  // The group's ncclUniqueId (kNcclUniqueIdBytes bytes), made by one rank with NewNcclUniqueId()
  // and handed to all ranks by the coordinator (see ExchangeNcclUniqueId).
  std::string unique_id;
  // CUDA device ordinal this rank uses.
  int device = 0;
  // Bound on initialisation and on each collective.
  absl::Duration timeout = absl::Seconds(60);
};

// Returns the number of visible CUDA devices (0 without a GPU or driver; never an error for that).
int NcclVisibleDeviceCount();

// ncclGetUniqueId, as kNcclUniqueIdBytes raw bytes.
absl::StatusOr<std::string> NewNcclUniqueId();

// Rank 0 makes a unique id and publishes it under `key`; the other ranks wait up to `timeout` for
// it. Returns the id on every rank.
absl::StatusOr<std::string> ExchangeNcclUniqueId(KeyValueStore& store, absl::string_view key,
                                                 int rank, absl::Duration timeout);

// Joins the NCCL communicator. Blocks until all ranks have joined or `timeout` (then the partial
// communicator is aborted and DEADLINE_EXCEEDED returned).
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const NcclOptions& options);

}  // namespace g4

#endif  // G4SERVE_WORKER_COMM_NCCL_COMMUNICATOR_H_
