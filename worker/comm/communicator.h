// Collective communication between the ranks of one replica.
//
// One interface, two backends:
//   * Gloo (gloo_communicator.h): CPU, TCP. Data pointers are HOST memory. Used for the per-step
//     control channel (step descriptors) and for running tensor/expert-parallel logic in CPU tests.
//   * NCCL (nccl_communicator.h): GPU. Data pointers are DEVICE memory of the communicator's
//     device; every call is synchronous from the caller's view (it returns once the collective has
//     completed on the communicator's stream, or failed).
//
// Failure semantics (both backends):
//   * Every call is bounded by the communicator's timeout: a peer that died or stopped calling
//     becomes DEADLINE_EXCEEDED or UNAVAILABLE in bounded time, never a hang.
//   * After the first failed collective the communicator is broken: the ranks may disagree on how
//     far they got, so every later call returns FAILED_PRECONDITION carrying the first error. The
//     caller tears the communicator down and bootstraps a new one (new store prefix / unique id).
//   * All ranks must issue the same collectives in the same order with matching arguments.
//
// Threading: a communicator is used by one thread at a time (calls are serialised internally;
// concurrent calls are not an error but they do not overlap).
#ifndef G4SERVE_WORKER_COMM_COMMUNICATOR_H_
#define G4SERVE_WORKER_COMM_COMMUNICATOR_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace g4 {

class Communicator {
 public:
  virtual ~Communicator() = default;

  // This rank, in [0, size()).
  virtual int rank() const = 0;
  // Number of ranks in the communicator.
  virtual int size() const = 0;
  // "gloo" or "nccl".
  virtual const char* backend() const = 0;

  // In place: data[i] = sum over ranks of data[i], on every rank. `count` elements.
  virtual absl::Status AllReduceSum(float* data, int64_t count) = 0;

  // out[r * count_per_rank + i] = in_of_rank_r[i]. `out` holds size() * count_per_rank elements
  // and must not overlap `in`.
  virtual absl::Status AllGather(const float* in, int64_t count_per_rank, float* out) = 0;

  // In place: `bytes` bytes at `data` on `root` are copied to `data` on every rank. All ranks
  // pass the same `bytes`.
  virtual absl::Status Broadcast(void* data, int64_t bytes, int root) = 0;

  // Returns once every rank has entered the barrier.
  virtual absl::Status Barrier() = 0;

  // out_of_rank_r[s * count_per_rank + i] = in_of_rank_s[r * count_per_rank + i]. `in` and `out`
  // each hold size() * count_per_rank elements and must not overlap. (For MoE all-to-all dispatch;
  // both backends implement it.)
  virtual absl::Status AllToAll(const float* in, int64_t count_per_rank, float* out) = 0;

  // Variable-size broadcast of a byte string from `root` (step descriptors): `*payload` on root is
  // sent, every other rank's `*payload` is replaced. One 4 KiB collective carries the length and up
  // to 4088 payload bytes; a longer payload costs a second broadcast for the rest.
  // Host memory only: the NCCL backend returns UNIMPLEMENTED (step descriptors travel over the
  // Gloo CPU channel by design).
  virtual absl::Status BroadcastBytes(std::string* payload, int root);
};

}  // namespace g4

#endif  // G4SERVE_WORKER_COMM_COMMUNICATOR_H_
