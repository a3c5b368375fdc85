// Gloo backend: correctness with ranks as threads of one process (in-memory store), argument
// checks, and loopback latency of small all-reduces.
#include "worker/comm/gloo_communicator.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "gtest/gtest.h"
#include "tests/worker/comm/collective_checks.h"
#include "tests/worker/comm/comm_test_util.h"
#include "worker/comm/key_value_store.h"

namespace g4 {
namespace {

using ::g4::testing::CheckAllCollectives;
using ::g4::testing::HardTimeLimit;
using ::g4::testing::RunRanksAsThreads;

GlooOptions Options(KeyValueStore* store, int rank, int size) {
  GlooOptions o;
  o.rank = rank;
  o.size = size;
  o.store = store;
  o.prefix = "test/gloo";
  o.timeout = absl::Seconds(10);
  return o;
}

class GlooThreadsTest : public ::testing::TestWithParam<int> {};

TEST_P(GlooThreadsTest, AllCollectivesAreCorrect) {
  HardTimeLimit limit(60);
  const int size = GetParam();
  InMemoryKeyValueStore store;
  std::vector<absl::Status> statuses = RunRanksAsThreads(size, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        CreateGlooCommunicator(Options(&store, rank, size)));
    if (comm->rank() != rank || comm->size() != size) {
      return absl::InternalError("rank/size mismatch");
    }
    return CheckAllCollectives(*comm);
  });
  for (int r = 0; r < size; ++r)
    EXPECT_TRUE(statuses[r].ok()) << "rank " << r << ": " << statuses[r];
}

INSTANTIATE_TEST_SUITE_P(Sizes, GlooThreadsTest, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("Ranks", info.param);
                         });

TEST(GlooCommunicatorTest, TwoGroupsShareOneStoreUnderDifferentPrefixes) {
  HardTimeLimit limit(30);
  InMemoryKeyValueStore store;
  std::vector<absl::Status> statuses = RunRanksAsThreads(4, [&](int id) -> absl::Status {
    GlooOptions o = Options(&store, id % 2, 2);
    o.prefix = absl::StrCat("group", id / 2);
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm, CreateGlooCommunicator(o));
    float x = static_cast<float>(id);
    G4_RETURN_IF_ERROR(comm->AllReduceSum(&x, 1));
    const float want = id < 2 ? 0.0f + 1.0f : 2.0f + 3.0f;
    if (x != want) return absl::InternalError(absl::StrCat("got ", x, " want ", want));
    return absl::OkStatus();
  });
  for (int r = 0; r < 4; ++r) EXPECT_TRUE(statuses[r].ok()) << statuses[r];
}

TEST(GlooCommunicatorTest, RejectsBadOptions) {
  InMemoryKeyValueStore store;
  GlooOptions o = Options(&store, 0, 2);
  o.store = nullptr;
  EXPECT_EQ(CreateGlooCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options(&store, 2, 2);
  EXPECT_EQ(CreateGlooCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options(&store, 0, 0);
  EXPECT_EQ(CreateGlooCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Options(&store, 0, 1);
  o.timeout = absl::ZeroDuration();
  EXPECT_EQ(CreateGlooCommunicator(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GlooCommunicatorTest, RejectsBadArgumentsWithoutBreaking) {
  HardTimeLimit limit(30);
  InMemoryKeyValueStore store;
  std::vector<absl::Status> statuses = RunRanksAsThreads(2, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        CreateGlooCommunicator(Options(&store, rank, 2)));
    float x = 1.0f;
    if (comm->Broadcast(&x, 4, 2).code() != absl::StatusCode::kInvalidArgument ||
        comm->AllReduceSum(nullptr, 3).code() != absl::StatusCode::kInvalidArgument ||
        comm->AllReduceSum(&x, -1).code() != absl::StatusCode::kInvalidArgument ||
        comm->BroadcastBytes(nullptr, 0).code() != absl::StatusCode::kInvalidArgument) {
      return absl::InternalError("bad argument accepted");
    }
    G4_RETURN_IF_ERROR(comm->AllReduceSum(&x, 0));  // empty: completes locally
    G4_RETURN_IF_ERROR(comm->AllReduceSum(&x, 1));
    if (x != 2.0f) return absl::InternalError("communicator unusable after bad arguments");
    return absl::OkStatus();
  });
  for (int r = 0; r < 2; ++r) EXPECT_TRUE(statuses[r].ok()) << statuses[r];
}

// Not a pass/fail check: prints the loopback latency of the per-layer decode pattern
// (a 4-byte and a 16 KiB all-reduce) and of a 64-byte BroadcastBytes, for the report.
TEST(GlooCommunicatorTest, LoopbackLatency) {
  HardTimeLimit limit(60);
  for (int size : {2, 4}) {
    InMemoryKeyValueStore store;
    std::vector<double> us(3, 0.0);
    std::vector<absl::Status> statuses = RunRanksAsThreads(size, [&](int rank) -> absl::Status {
      G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                          CreateGlooCommunicator(Options(&store, rank, size)));
      constexpr int kIters = 200;
      std::vector<float> small(1, 1.0f), medium(4096, 1.0f);
      std::string step(64, 's');
      for (int i = 0; i < 100; ++i) G4_RETURN_IF_ERROR(comm->AllReduceSum(small.data(), 1));
      G4_RETURN_IF_ERROR(comm->Barrier());
      auto time = [&](auto&& op) -> absl::StatusOr<double> {
        const absl::Time t0 = absl::Now();
        for (int i = 0; i < kIters; ++i) G4_RETURN_IF_ERROR(op());
        return absl::ToDoubleMicroseconds(absl::Now() - t0) / kIters;
      };
      G4_ASSIGN_OR_RETURN(double a, time([&] { return comm->AllReduceSum(small.data(), 1); }));
      G4_ASSIGN_OR_RETURN(double b, time([&] { return comm->AllReduceSum(medium.data(), 4096); }));
      G4_ASSIGN_OR_RETURN(double c, time([&] { return comm->BroadcastBytes(&step, 0); }));
      if (rank == 0) us = {a, b, c};
      return absl::OkStatus();
    });
    for (const absl::Status& s : statuses) ASSERT_TRUE(s.ok()) << s;
    std::printf(
        "[latency] gloo loopback %d ranks: all-reduce 4 B %.1f us, 16 KiB %.1f us; "
        "BroadcastBytes 64 B %.1f us\n",
        size, us[0], us[1], us[2]);
  }
}

}  // namespace
}  // namespace g4
