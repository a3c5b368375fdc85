#include "worker/service/instrumented_communicator.h"

#include <chrono>

namespace g4 {
namespace {

// Times `call` and records it as `op` on `group`.
template <typename F>
absl::Status Timed(WorkerMetrics* metrics, const std::string& group, CollectiveOp op, F&& call) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = call();
  if (metrics != nullptr) {
    metrics->ObserveCollective(
        group, op,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return status;
}

}  // namespace

absl::Status InstrumentedCommunicator::AllReduceSum(float* data, int64_t count) {
  return Timed(metrics_, group_, CollectiveOp::kAllReduce,
               [&] { return inner_->AllReduceSum(data, count); });
}

absl::Status InstrumentedCommunicator::AllGather(const float* in, int64_t count_per_rank,
                                                 float* out) {
  return Timed(metrics_, group_, CollectiveOp::kAllGather,
               [&] { return inner_->AllGather(in, count_per_rank, out); });
}

absl::Status InstrumentedCommunicator::Broadcast(void* data, int64_t bytes, int root) {
  return Timed(metrics_, group_, CollectiveOp::kBroadcast,
               [&] { return inner_->Broadcast(data, bytes, root); });
}

absl::Status InstrumentedCommunicator::Barrier() {
  return Timed(metrics_, group_, CollectiveOp::kBarrier, [&] { return inner_->Barrier(); });
}

absl::Status InstrumentedCommunicator::AllToAll(const float* in, int64_t count_per_rank,
                                                float* out) {
  return Timed(metrics_, group_, CollectiveOp::kAllToAll,
               [&] { return inner_->AllToAll(in, count_per_rank, out); });
}

absl::Status InstrumentedCommunicator::BroadcastBytes(std::string* payload, int root) {
  return Timed(metrics_, group_, CollectiveOp::kBroadcast,
               [&] { return inner_->BroadcastBytes(payload, root); });
}

}  // namespace g4
