// Gloo backend failure semantics: a peer that never joins, a peer that dies after connecting and a
// peer that stalls all become errors within the timeout, never hangs; a failed communicator stays
// failed.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/worker/comm/comm_test_util.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/key_value_store.h"

namespace g4 {
namespace {

using ::g4::testing::HardTimeLimit;
using ::g4::testing::RunRanksAsProcesses;
using ::g4::testing::RunRanksAsThreads;
using ::g4::testing::ScopedTempDir;
using ::testing::HasSubstr;

constexpr absl::Duration kTimeout = absl::Seconds(2);
// Generous scheduling slack on a loaded 2-core CI box; the point is "bounded", not "precise".
constexpr absl::Duration kSlack = absl::Seconds(3);

GlooOptions Options(KeyValueStore* store, int rank, int size) {
  GlooOptions o;
  o.rank = rank;
  o.size = size;
  o.store = store;
  o.prefix = "test/failure";
  o.timeout = kTimeout;
  return o;
}

TEST(GlooFailureTest, PeerThatNeverJoinsFailsConnectWithinTimeout) {
  HardTimeLimit limit(30);
  for (int size : {2, 4}) {
    InMemoryKeyValueStore store;
    // Ranks 0..size-2 join; the last rank never does.
    std::vector<absl::Duration> elapsed(size - 1);
    std::vector<absl::Status> statuses = RunRanksAsThreads(size - 1, [&](int rank) {
      const absl::Time start = absl::Now();
      absl::Status s = CreateGlooCommunicator(Options(&store, rank, size)).status();
      elapsed[rank] = absl::Now() - start;
      return s;
    });
    for (int r = 0; r < size - 1; ++r) {
      EXPECT_EQ(statuses[r].code(), absl::StatusCode::kDeadlineExceeded) << statuses[r];
      EXPECT_THAT(std::string(statuses[r].message()),
                  HasSubstr(absl::StrCat("ranks that never joined: ", size - 1)));
      EXPECT_THAT(std::string(statuses[r].message()), HasSubstr("gloo connect"));
      EXPECT_LT(elapsed[r], kTimeout + kSlack);
    }
  }
}

TEST(GlooFailureTest, PeerThatExitsAfterConnectingFailsNextCollective) {
  HardTimeLimit limit(30);
  InMemoryKeyValueStore store;
  absl::Notification peer_gone;
  absl::Status first, second;
  absl::Duration elapsed;
  std::vector<absl::Status> statuses = RunRanksAsThreads(2, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        CreateGlooCommunicator(Options(&store, rank, 2)));
    G4_RETURN_IF_ERROR(comm->Barrier());
    if (rank == 1) {
      comm.reset();  // closes its sockets, as a crashed process would
      peer_gone.Notify();
      return absl::OkStatus();
    }
    peer_gone.WaitForNotification();
    std::vector<float> x(1, 1.0f);
    const absl::Time start = absl::Now();
    first = comm->AllReduceSum(x.data(), 1);
    elapsed = absl::Now() - start;
    second = comm->AllReduceSum(x.data(), 1);
    return absl::OkStatus();
  });
  ASSERT_TRUE(statuses[0].ok()) << statuses[0];
  ASSERT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_FALSE(first.ok());
  EXPECT_TRUE(absl::IsUnavailable(first) || absl::IsDeadlineExceeded(first)) << first;
  EXPECT_THAT(std::string(first.message()), HasSubstr("AllReduceSum on rank 0 of 2"));
  EXPECT_LT(elapsed, kTimeout + kSlack);
  EXPECT_EQ(second.code(), absl::StatusCode::kFailedPrecondition) << second;
  EXPECT_THAT(std::string(second.message()), HasSubstr("broken"));
  std::printf("[failure] dead peer detected after %s: %s\n", absl::FormatDuration(elapsed).c_str(),
              first.ToString().c_str());
}

TEST(GlooFailureTest, StalledPeerBecomesDeadlineExceeded) {
  HardTimeLimit limit(30);
  InMemoryKeyValueStore store;
  absl::Notification done;
  absl::Status result;
  absl::Duration elapsed;
  std::vector<absl::Status> statuses = RunRanksAsThreads(2, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        CreateGlooCommunicator(Options(&store, rank, 2)));
    G4_RETURN_IF_ERROR(comm->Barrier());
    if (rank == 1) {
      done.WaitForNotification();  // alive, connected, but never calls the collective
      return absl::OkStatus();
    }
    std::vector<float> x(1024, 1.0f);
    const absl::Time start = absl::Now();
    result = comm->AllReduceSum(x.data(), 1024);
    elapsed = absl::Now() - start;
    done.Notify();
    return absl::OkStatus();
  });
  ASSERT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_EQ(result.code(), absl::StatusCode::kDeadlineExceeded) << result;
  EXPECT_GE(elapsed, kTimeout - absl::Milliseconds(100));
  EXPECT_LT(elapsed, kTimeout + kSlack);
}

TEST(GlooFailureTest, BroadcastBytesFromDeadRootFails) {
  HardTimeLimit limit(30);
  InMemoryKeyValueStore store;
  absl::Notification root_gone;
  absl::Status result;
  std::vector<absl::Status> statuses = RunRanksAsThreads(3, [&](int rank) -> absl::Status {
    G4_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> comm,
                        CreateGlooCommunicator(Options(&store, rank, 3)));
    G4_RETURN_IF_ERROR(comm->Barrier());
    if (rank == 0) {
      comm.reset();
      root_gone.Notify();
      return absl::OkStatus();
    }
    root_gone.WaitForNotification();
    std::string step;
    absl::Status s = comm->BroadcastBytes(&step, 0);
    if (rank == 1) result = s;
    if (s.ok()) return absl::InternalError("broadcast from a dead root succeeded");
    return absl::OkStatus();
  });
  for (const absl::Status& s : statuses) EXPECT_TRUE(s.ok()) << s;
  EXPECT_FALSE(result.ok());
}

// The process version: rank 1 is SIGKILLed after connecting; rank 0's next all-reduce must fail
// within the timeout. Exit codes: 0 = error seen in time, 1 = collective succeeded, 2 = too slow,
// 3 = connect failed.
TEST(GlooFailureTest, KilledPeerProcessFailsSurvivorsCollective) {
  HardTimeLimit limit(60);
  ScopedTempDir dir{"g4comm"};
  std::vector<int> codes = RunRanksAsProcesses(2, [&](int rank) {
    DirectoryKeyValueStore store(dir.path());
    absl::StatusOr<std::unique_ptr<Communicator>> comm =
        CreateGlooCommunicator(Options(&store, rank, 2));
    if (!comm.ok()) return 3;
    if (!(*comm)->Barrier().ok()) return 3;
    if (rank == 1) raise(SIGKILL);
    absl::SleepFor(absl::Milliseconds(200));  // let the peer die first (either order must work)
    std::vector<float> x(1, 1.0f);
    const absl::Time start = absl::Now();
    const absl::Status s = (*comm)->AllReduceSum(x.data(), 1);
    const absl::Duration elapsed = absl::Now() - start;
    std::fprintf(stderr, "[failure] survivor after %s: %s\n", absl::FormatDuration(elapsed).c_str(),
                 s.ToString().c_str());
    if (s.ok()) return 1;
    if (elapsed >= kTimeout + kSlack) return 2;
    return 0;
  });
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 128 + SIGKILL);
}

// A peer process that never starts: the survivor's connect fails in bounded time.
TEST(GlooFailureTest, MissingPeerProcessFailsConnect) {
  HardTimeLimit limit(60);
  ScopedTempDir dir{"g4comm"};
  std::vector<int> codes = RunRanksAsProcesses(1, [&](int rank) {
    DirectoryKeyValueStore store(dir.path());
    const absl::Time start = absl::Now();
    const absl::Status s = CreateGlooCommunicator(Options(&store, 0, 2)).status();
    const absl::Duration elapsed = absl::Now() - start;
    if (!absl::IsDeadlineExceeded(s)) return 1;
    if (elapsed >= kTimeout + kSlack) return 2;
    return 0;
  });
  EXPECT_EQ(codes[0], 0);
}

}  // namespace
}  // namespace g4
