#include "worker/comm/gloo_communicator.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gloo/allgather.h"
#include "gloo/allreduce.h"
#include "gloo/alltoall.h"
#include "gloo/barrier.h"
#include "gloo/broadcast.h"
#include "gloo/common/error.h"
#include "gloo/math.h"
#include "gloo/rendezvous/context.h"
#include "gloo/transport/tcp/device.h"
#include "worker/comm/gloo_store_adapter.h"

namespace g4 {
namespace {

// Converts whatever Gloo (or our store adapter) threw into a status. Timeouts become
// DEADLINE_EXCEEDED, I/O errors (peer closed the connection, refused, reset) UNAVAILABLE.
absl::Status FromException(const std::string& context, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const GlooStoreError& e) {
    return absl::Status(e.status().code(), absl::StrCat(context, ": ", e.status().message()));
  } catch (const gloo::IoException& e) {
    const absl::string_view what = e.what();
    if (absl::StrContains(what, "Timed out") || absl::StrContains(what, "timed out") ||
        absl::StrContains(what, "timeout")) {
      return absl::DeadlineExceededError(absl::StrCat(context, ": ", what));
    }
    return absl::UnavailableError(absl::StrCat(context, ": ", what));
  } catch (const std::exception& e) {  // gloo::Exception, gloo::EnforceNotMet, std::bad_alloc...
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": unknown exception"));
  }
}

class GlooCommunicator final : public Communicator {
 public:
  GlooCommunicator(int rank, int size, absl::Duration timeout,
                   std::shared_ptr<gloo::rendezvous::Context> context)
      : rank_(rank),
        size_(size),
        timeout_(absl::ToChronoMilliseconds(timeout)),
        context_(std::move(context)) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend() const override { return "gloo"; }

  absl::Status AllReduceSum(float* data, int64_t count) override {
    if (count < 0 || (count > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(
          absl::StrCat("AllReduceSum: bad buffer (count ", count, ")"));
    }
    return Run("AllReduceSum", count == 0, [&](uint32_t tag) {
      gloo::AllreduceOptions opts(context_);
      opts.setOutput(data, static_cast<size_t>(count));
      opts.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      opts.setTag(tag);
      opts.setTimeout(timeout_);
      gloo::allreduce(opts);
    });
  }

  absl::Status AllGather(const float* in, int64_t count_per_rank, float* out) override {
    if (count_per_rank < 0 || (count_per_rank > 0 && (in == nullptr || out == nullptr))) {
      return absl::InvalidArgumentError(
          absl::StrCat("AllGather: bad buffers (count_per_rank ", count_per_rank, ")"));
    }
    if (size_ == 1) {
      if (count_per_rank > 0) std::memcpy(out, in, count_per_rank * sizeof(float));
      return Run("AllGather", true, [](uint32_t) {});
    }
    return Run("AllGather", count_per_rank == 0, [&](uint32_t tag) {
      gloo::AllgatherOptions opts(context_);
      opts.setInput(const_cast<float*>(in), static_cast<size_t>(count_per_rank));
      opts.setOutput(out, static_cast<size_t>(count_per_rank) * size_);
      opts.setTag(tag);
      opts.setTimeout(timeout_);
      gloo::allgather(opts);
    });
  }

  absl::Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= size_) {
      return absl::InvalidArgumentError(
          absl::StrCat("Broadcast: root ", root, " out of range [0, ", size_, ")"));
    }
    if (bytes < 0 || (bytes > 0 && data == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat("Broadcast: bad buffer (bytes ", bytes, ")"));
    }
    return Run(absl::StrCat("Broadcast(root ", root, ")"), bytes == 0, [&](uint32_t tag) {
      gloo::BroadcastOptions opts(context_);
      opts.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
      opts.setRoot(root);
      opts.setTag(tag);
      opts.setTimeout(timeout_);
      gloo::broadcast(opts);
    });
  }

  absl::Status Barrier() override {
    return Run("Barrier", false, [&](uint32_t tag) {
      gloo::BarrierOptions opts(context_);
      opts.setTag(tag);
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    });
  }

  absl::Status AllToAll(const float* in, int64_t count_per_rank, float* out) override {
    if (count_per_rank < 0 || (count_per_rank > 0 && (in == nullptr || out == nullptr))) {
      return absl::InvalidArgumentError(
          absl::StrCat("AllToAll: bad buffers (count_per_rank ", count_per_rank, ")"));
    }
    if (size_ == 1) {
      if (count_per_rank > 0) std::memcpy(out, in, count_per_rank * sizeof(float));
      return Run("AllToAll", true, [](uint32_t) {});
    }
    return Run("AllToAll", count_per_rank == 0, [&](uint32_t tag) {
      const size_t total = static_cast<size_t>(count_per_rank) * size_;
      gloo::AlltoallOptions opts(context_);
      opts.setInput(const_cast<float*>(in), total);
      opts.setOutput(out, total);
      opts.setTag(tag);
      opts.setTimeout(timeout_);
      gloo::alltoall(opts);
    });
  }

 private:
  // Runs one collective under the lock with exceptions converted; the first failure breaks the
  // communicator. `empty` collectives (no data, or a single rank) complete locally: every rank
  // passes the same sizes, so all of them skip it.
  template <typename Fn>
  absl::Status Run(const std::string& op, bool empty, Fn&& fn) {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("gloo ", op, " on rank ", rank_,
                       ": communicator is broken by an earlier error: ", broken_.message()));
    }
    if (empty || size_ == 1) return absl::OkStatus();
    const uint32_t tag = next_tag_++;
    try {
      fn(tag);
      return absl::OkStatus();
    } catch (...) {
      broken_ = FromException(absl::StrCat("gloo ", op, " on rank ", rank_, " of ", size_, " (op #",
                                           tag, ", timeout ", timeout_.count(), " ms)"),
                              std::current_exception());
      return broken_;
    }
  }

  const int rank_;
  const int size_;
  const std::chrono::milliseconds timeout_;
  std::shared_ptr<gloo::rendezvous::Context> context_;
  absl::Mutex mu_;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  uint32_t next_tag_ ABSL_GUARDED_BY(mu_) = 0;
};

// After a failed connect: which peers never published their address?
std::vector<int> MissingRanks(KeyValueStore& store, const std::string& prefix, int size) {
  std::vector<int> missing;
  for (int r = 0; r < size; ++r) {
    if (!store.Get(absl::StrCat(prefix, "/", r), absl::ZeroDuration()).ok()) missing.push_back(r);
  }
  return missing;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateGlooCommunicator(const GlooOptions& options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("gloo: store is null");
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return absl::InvalidArgumentError(
        absl::StrCat("gloo: rank ", options.rank, " / size ", options.size, " is invalid"));
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("gloo: timeout must be positive");
  }
  const std::string where =
      absl::StrCat("gloo connect (rank ", options.rank, " of ", options.size, ", prefix '",
                   options.prefix, "', timeout ", absl::FormatDuration(options.timeout), ")");
  GlooStoreAdapter store(options.store, options.prefix, options.timeout);
  try {
    gloo::transport::tcp::attr attr;
    if (options.interface.empty()) {
      attr.hostname = options.hostname;
    } else {
      attr.iface = options.interface;
    }
    std::shared_ptr<gloo::transport::Device> device = gloo::transport::tcp::CreateDevice(attr);
    auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.size);
    // The context timeout bounds the pair handshakes in connectFullMesh and is the default for
    // collectives; the adapter bounds the waits for peers' addresses.
    context->setTimeout(absl::ToChronoMilliseconds(options.timeout));
    context->connectFullMesh(store, device);
    return std::unique_ptr<Communicator>(std::make_unique<GlooCommunicator>(
        options.rank, options.size, options.timeout, std::move(context)));
  } catch (...) {
    absl::Status status = FromException(where, std::current_exception());
    const std::vector<int> missing = MissingRanks(*options.store, options.prefix, options.size);
    if (!missing.empty()) {
      status =
          absl::Status(status.code(), absl::StrCat(status.message(), " [ranks that never joined: ",
                                                   absl::StrJoin(missing, ","), "]"));
    }
    return status;
  }
}

}  // namespace g4
