#include "worker/comm/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

static_assert(sizeof(ncclUniqueId) == kNcclUniqueIdBytes, "ncclUniqueId size changed");

absl::Status CudaError(absl::string_view what, cudaError_t err) {
  return absl::InternalError(
      absl::StrCat(what, ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err)));
}

absl::Status NcclError(absl::string_view what, ncclResult_t result, ncclComm_t comm) {
  const char* last = comm != nullptr ? ncclGetLastError(comm) : nullptr;
  const std::string detail =
      absl::StrCat(ncclGetErrorString(result),
                   last != nullptr && *last ? absl::StrCat(" (", last, ")") : std::string());
  switch (result) {
    case ncclInvalidArgument:
    case ncclInvalidUsage:
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", detail));
    case ncclSystemError:
    case ncclRemoteError:
      return absl::UnavailableError(absl::StrCat(what, ": ", detail));
    default:
      return absl::InternalError(absl::StrCat(what, ": ", detail));
  }
}

// Short spin, then short sleeps: collectives on the decode path take tens of microseconds.
class Backoff {
 public:
  void Pause() {
    if (++spins_ < 1000) {
      std::this_thread::yield();
    } else {
      absl::SleepFor(absl::Microseconds(50));
    }
  }

 private:
  int spins_ = 0;
};

// Waits for a non-blocking communicator to leave ncclInProgress (after init or an enqueue).
absl::Status AwaitCommReady(ncclComm_t comm, absl::Time deadline, absl::string_view what) {
  Backoff backoff;
  while (true) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) return NcclError(absl::StrCat(what, " (GetAsyncError)"), r, comm);
    if (state == ncclSuccess) return absl::OkStatus();
    if (state != ncclInProgress) return NcclError(what, state, comm);
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(what, ": still in progress at the deadline"));
    }
    backoff.Pause();
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int rank, int size, int device, absl::Duration timeout, ncclComm_t comm,
                   cudaStream_t stream, float* scratch)
      : rank_(rank),
        size_(size),
        device_(device),
        timeout_(timeout),
        comm_(comm),
        stream_(stream),
        scratch_(scratch) {}

  ~NcclCommunicator() override {
    absl::MutexLock lock(&mu_);
    cudaSetDevice(device_);
    if (comm_ != nullptr) {
      // Finalize flushes outstanding work; bounded, then abort as the fallback.
      const ncclResult_t f = ncclCommFinalize(comm_);
      const bool clean = (f == ncclSuccess || f == ncclInProgress) &&
                         AwaitCommReady(comm_, absl::Now() + timeout_, "finalize").ok();
      if (clean) {
        ncclCommDestroy(comm_);
      } else {
        ncclCommAbort(comm_);
      }
      comm_ = nullptr;
    }
    if (scratch_ != nullptr) cudaFree(scratch_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "nccl"; }

  absl::Status AllReduceSum(float* data, int64_t count) override {
    if (count < 0 || (count > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("AllReduceSum: bad buffer (count ", count, ")"));
    }
    return Run("AllReduceSum", count == 0, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), ncclFloat, ncclSum, comm_,
                           stream_);
    });
  }

  absl::Status AllGather(const float* in, int64_t count_per_rank, float* out) override {
    if (count_per_rank < 0 || (count_per_rank > 0 && (in == nullptr || out == nullptr))) {
      return absl::InvalidArgumentError("AllGather: bad buffers");
    }
    return Run("AllGather", count_per_rank == 0, [&] {
      return ncclAllGather(in, out, static_cast<size_t>(count_per_rank), ncclFloat, comm_, stream_);
    });
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(absl::StrCat("Broadcast: root ", root, " out of range"));
    }
    if (bytes < 0 || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError("Broadcast: bad buffer");
    }
    return Run(absl::StrCat("Broadcast(root ", root, ")"), bytes == 0, [&] {
      return ncclBroadcast(data, data, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_);
    });
  }

  absl::Status Barrier() override {
    // NCCL has no barrier: a one-element all-reduce on a device scratch word.
    return Run("Barrier", false, [&] {
      return ncclAllReduce(scratch_, scratch_, 1, ncclFloat, ncclSum, comm_, stream_);
    });
  }

  absl::Status AllToAll(const float* in, int64_t count_per_rank, float* out) override {
    if (count_per_rank < 0 || (count_per_rank > 0 && (in == nullptr || out == nullptr))) {
      return absl::InvalidArgumentError("AllToAll: bad buffers");
    }
    return Run("AllToAll", count_per_rank == 0, [&] {
      return ncclAlltoAll(in, out, static_cast<size_t>(count_per_rank), ncclFloat, comm_, stream_);
    });
  }

  absl::Status BroadcastBytes(std::string* payload, int root) override {
    return absl::UnimplementedError(
        "nccl: BroadcastBytes takes host memory; send step descriptors over the Gloo CPU channel");
  }

 private:
  // Enqueues one collective, waits for it with the deadline, aborts the communicator on failure.
  template <typename Enqueue>
  absl::Status Run(const std::string& op, bool empty, Enqueue&& enqueue) {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "nccl ", op, " on rank ", rank_, ": communicator is broken: ", broken_.message()));
    }
    if (empty) return absl::OkStatus();
    const std::string where =
        absl::StrCat("nccl ", op, " on rank ", rank_, " of ", size_, " (device ", device_,
                     ", timeout ", absl::FormatDuration(timeout_), ")");
    absl::Status status = RunLocked(where, std::forward<Enqueue>(enqueue));
    if (!status.ok()) {
      broken_ = status;
      if (comm_ != nullptr) {
        ncclCommAbort(comm_);  // unblocks the kernels spinning on the dead peer
        comm_ = nullptr;
      }
    }
    return status;
  }

  template <typename Enqueue>
  absl::Status RunLocked(const std::string& where, Enqueue&& enqueue) {
    const absl::Time deadline = absl::Now() + timeout_;
    cudaError_t err = cudaSetDevice(device_);
    if (err != cudaSuccess) return CudaError(where, err);
    const ncclResult_t r = enqueue();
    if (r == ncclInProgress) {
      G4_RETURN_IF_ERROR(AwaitCommReady(comm_, deadline, where));
    } else if (r != ncclSuccess) {
      return NcclError(where, r, comm_);
    }
    Backoff backoff;
    while (true) {
      err = cudaStreamQuery(stream_);
      if (err == cudaSuccess) return absl::OkStatus();
      if (err != cudaErrorNotReady) return CudaError(where, err);
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      if (state != ncclSuccess && state != ncclInProgress) return NcclError(where, state, comm_);
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(where, ": not complete at the deadline (a peer is dead or stalled)"));
      }
      backoff.Pause();
    }
  }

  const int rank_;
  const int size_;
  const int device_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  ncclComm_t comm_ ABSL_GUARDED_BY(mu_);
  cudaStream_t stream_;
  float* scratch_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int NcclVisibleDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

absl::StatusOr<std::string> NewNcclUniqueId() {
  ncclUniqueId id;
  const ncclResult_t r = ncclGetUniqueId(&id);
  if (r != ncclSuccess) return NcclError("ncclGetUniqueId", r, nullptr);
  return std::string(id.internal, sizeof(id.internal));
}

absl::StatusOr<std::string> ExchangeNcclUniqueId(KeyValueStore& store, absl::string_view key,
                                                 int rank, absl::Duration timeout) {
  if (rank == 0) {
    G4_ASSIGN_OR_RETURN(std::string id, NewNcclUniqueId());
    G4_RETURN_IF_ERROR(store.Set(key, id));
    return id;
  }
  G4_ASSIGN_OR_RETURN(std::string id, store.Get(key, timeout));
  if (id.size() != kNcclUniqueIdBytes) {
    return absl::DataLossError(absl::StrCat("nccl unique id under '", key, "' has ", id.size(),
                                            " bytes, want ", kNcclUniqueIdBytes));
  }
  return id;
}

absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const NcclOptions& options) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("nccl: rank ", options.rank, " / size ", options.size, " is invalid"));
  }
  if (options.unique_id.size() != kNcclUniqueIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("nccl: unique id has ", options.unique_id.size(),
                                                   " bytes, want ", kNcclUniqueIdBytes));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("nccl: timeout must be positive");
  }
  const std::string where =
      absl::StrCat("nccl init (rank ", options.rank, " of ", options.size, ", device ",
                   options.device, ", timeout ", absl::FormatDuration(options.timeout), ")");
  const absl::Time deadline = absl::Now() + options.timeout;
  cudaError_t err = cudaSetDevice(options.device);
  if (err != cudaSuccess) return CudaError(where, err);

  ncclUniqueId id;
  std::memcpy(id.internal, options.unique_id.data(), sizeof(id.internal));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const ncclResult_t r = ncclCommInitRankConfig(&comm, options.size, id, options.rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    absl::Status status = NcclError(where, r, comm);
    if (comm != nullptr) ncclCommAbort(comm);
    return status;
  }
  absl::Status ready = AwaitCommReady(comm, deadline, where);
  if (!ready.ok()) {
    ncclCommAbort(comm);
    return absl::Status(
        ready.code(),
        absl::StrCat(ready.message(),
                     absl::IsDeadlineExceeded(ready) ? " (not every rank joined in time)" : ""));
  }

  cudaStream_t stream = nullptr;
  float* scratch = nullptr;
  err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaMalloc(&scratch, sizeof(float));
  if (err == cudaSuccess) err = cudaMemset(scratch, 0, sizeof(float));
  if (err != cudaSuccess) {
    if (scratch != nullptr) cudaFree(scratch);
    if (stream != nullptr) cudaStreamDestroy(stream);
    ncclCommAbort(comm);
    return CudaError(where, err);
  }
  return std::unique_ptr<Communicator>(std::make_unique<NcclCommunicator>(
      options.rank, options.size, options.device, options.timeout, comm, stream, scratch));
}

}  // namespace g4
