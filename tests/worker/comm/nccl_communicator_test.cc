// NCCL backend (label `gpu`). Skips without a GPU. NCCL does not allow two ranks of one
// communicator on the same GPU, so multi-rank checks use one rank per visible GPU (up to 8);
// with a single GPU the collectives run on a 1-rank communicator and the timeout/abort path is
// checked with a 2-rank communicator whose second rank never joins.
#include "worker/comm/nccl_communicator.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "tests/worker/comm/comm_test_util.h"
#include "worker/comm/key_value_store.h"

namespace g4 {
namespace {

using ::g4::testing::HardTimeLimit;
using ::g4::testing::RankData;
using ::g4::testing::RunRanksAsThreads;

#define REQUIRE_GPUS(n)                                                               \
  do {                                                                                \
    if (NcclVisibleDeviceCount() < (n)) GTEST_SKIP() << "needs " << (n) << " GPU(s)"; \
  } while (false)

// A device buffer holding floats, freed on scope exit.
class DeviceFloats {
 public:
  explicit DeviceFloats(size_t n) : n_(n) { cudaMalloc(&ptr_, std::max<size_t>(n, 1) * 4); }
  ~DeviceFloats() { cudaFree(ptr_); }
  float* get() { return ptr_; }
  absl::Status Upload(const std::vector<float>& v) {
    return cudaMemcpy(ptr_, v.data(), v.size() * 4, cudaMemcpyHostToDevice) == cudaSuccess
               ? absl::OkStatus()
               : absl::InternalError("upload");
  }
  absl::StatusOr<std::vector<float>> Download() {
    std::vector<float> v(n_);
    if (cudaMemcpy(v.data(), ptr_, n_ * 4, cudaMemcpyDeviceToHost) != cudaSuccess) {
      return absl::InternalError("download");
    }
    return v;
  }

 private:
  size_t n_;
  float* ptr_ = nullptr;
};

absl::Status CheckCollectives(Communicator& comm, int device) {
  if (cudaSetDevice(device) != cudaSuccess) return absl::InternalError("cudaSetDevice");
  const int n = comm.size(), me = comm.rank();
  constexpr int64_t kCount = 100'000;
  {  // AllReduceSum
    DeviceFloats buf(kCount);
    G4_RETURN_IF_ERROR(buf.Upload(RankData(me, kCount, 1)));
    G4_RETURN_IF_ERROR(comm.AllReduceSum(buf.get(), kCount));
    G4_ASSIGN_OR_RETURN(std::vector<float> got, buf.Download());
    std::vector<float> want(kCount, 0.0f);
    for (int r = 0; r < n; ++r) {
      const std::vector<float> d = RankData(r, kCount, 1);
      for (int64_t i = 0; i < kCount; ++i) want[i] += d[i];
    }
    if (got != want) return absl::InternalError(absl::StrCat("AllReduceSum mismatch on ", me));
  }
  {  // AllGather
    DeviceFloats in(kCount), out(kCount * n);
    G4_RETURN_IF_ERROR(in.Upload(RankData(me, kCount, 2)));
    G4_RETURN_IF_ERROR(comm.AllGather(in.get(), kCount, out.get()));
    G4_ASSIGN_OR_RETURN(std::vector<float> got, out.Download());
    for (int r = 0; r < n; ++r) {
      const std::vector<float> d = RankData(r, kCount, 2);
      if (!std::equal(d.begin(), d.end(), got.begin() + r * kCount)) {
        return absl::InternalError(absl::StrCat("AllGather mismatch on ", me));
      }
    }
  }
  {  // Broadcast from the last rank
    DeviceFloats buf(kCount);
    G4_RETURN_IF_ERROR(buf.Upload(RankData(me, kCount, 3)));
    G4_RETURN_IF_ERROR(comm.Broadcast(buf.get(), kCount * 4, n - 1));
    G4_ASSIGN_OR_RETURN(std::vector<float> got, buf.Download());
    if (got != RankData(n - 1, kCount, 3)) {
      return absl::InternalError(absl::StrCat("Broadcast mismatch on ", me));
    }
  }
  {  // AllToAll
    constexpr int64_t kPer = 1000;
    DeviceFloats in(kPer * n), out(kPer * n);
    G4_RETURN_IF_ERROR(in.Upload(RankData(me, kPer * n, 4)));
    G4_RETURN_IF_ERROR(comm.AllToAll(in.get(), kPer, out.get()));
    G4_ASSIGN_OR_RETURN(std::vector<float> got, out.Download());
    for (int s = 0; s < n; ++s) {
      const std::vector<float> d = RankData(s, kPer * n, 4);
      if (!std::equal(d.begin() + me * kPer, d.begin() + (me + 1) * kPer, got.begin() + s * kPer)) {
        return absl::InternalError(absl::StrCat("AllToAll mismatch on ", me));
      }
    }
  }
  for (int i = 0; i < 10; ++i) G4_RETURN_IF_ERROR(comm.Barrier());
  std::string payload = "x";
  if (comm.BroadcastBytes(&payload, 0).code() != absl::StatusCode::kUnimplemented) {
    return absl::InternalError("BroadcastBytes should be unimplemented on NCCL");
  }
  return absl::OkStatus();
}

TEST(NcclCommunicatorTest, RejectsBadOptionsWithoutTouchingTheGpu) {
  NcclOptions o;
  o.unique_id = "short";
  EXPECT_EQ(CreateNcclCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.unique_id = std::string(kNcclUniqueIdBytes, '\0');
  o.rank = 1;
  o.size = 1;
  EXPECT_EQ(CreateNcclCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NcclCommunicatorTest, CollectivesOneRankPerGpu) {
  REQUIRE_GPUS(1);
  HardTimeLimit limit(120);
  const int size = std::min(NcclVisibleDeviceCount(), 8);
  InMemoryKeyValueStore store;
  std::vector<absl::Status> statuses = RunRanksAsThreads(size, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::string id,
                        ExchangeNcclUniqueId(store, "test/nccl/id", rank, absl::Seconds(30)));
    NcclOptions o;
    o.rank = rank;
    o.size = size;
    o.unique_id = id;
    o.device = rank;
    o.timeout = absl::Seconds(60);
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, CreateNcclCommunicator(o));
    return CheckCollectives(*comm, rank);
  });
  for (int r = 0; r < size; ++r)
    EXPECT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r];
}

TEST(NcclCommunicatorTest, InitWithMissingRankTimesOutAndAborts) {
  REQUIRE_GPUS(1);
  HardTimeLimit limit(60);
  absl::StatusOr<std::string> id = NewNcclUniqueId();
  ASSERT_TRUE(id.ok()) << id.status();
  NcclOptions o;
  o.rank = 0;
  o.size = 2;  // rank 1 never joins
  o.unique_id = *id;
  o.device = 0;
  o.timeout = absl::Seconds(3);
  const absl::Time start = absl::Now();
  absl::Status s = CreateNcclCommunicator(o).status();
  const absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_LT(elapsed, absl::Seconds(3 + 10)) << "abort took too long";
  std::printf("[nccl] missing rank: %s after %s\n", s.ToString().c_str(),
              absl::FormatDuration(elapsed).c_str());
}

TEST(NcclCommunicatorTest, StalledPeerBecomesDeadlineExceeded) {
  REQUIRE_GPUS(2);
  HardTimeLimit limit(120);
  InMemoryKeyValueStore store;
  absl::Notification done;
  absl::Status result;
  absl::Duration elapsed;
  std::vector<absl::Status> statuses = RunRanksAsThreads(2, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::string id,
                        ExchangeNcclUniqueId(store, "test/nccl/stall", rank, absl::Seconds(30)));
    NcclOptions o;
    o.rank = rank;
    o.size = 2;
    o.unique_id = id;
    o.device = rank;
    o.timeout = absl::Seconds(3);
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, CreateNcclCommunicator(o));
    G4_RETURN_IF_ERROR(comm->Barrier());
    if (rank == 1) {
      done.WaitForNotification();
      return absl::OkStatus();
    }
    cudaSetDevice(0);
    DeviceFloats buf(1024);
    const absl::Time start = absl::Now();
    result = comm->AllReduceSum(buf.get(), 1024);
    elapsed = absl::Now() - start;
    done.Notify();
    return absl::OkStatus();
  });
  ASSERT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded) << result;
  EXPECT_LT(elapsed, absl::Seconds(3 + 10));
}

}  // namespace
}  // namespace g4
