// Gloo backend with ranks as separate processes (fork), bootstrapped through a directory store
// under a fresh temporary directory. Children report through their exit code.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/worker/comm/collective_checks.h"
#include "tests/worker/comm/comm_test_util.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/key_value_store.h"

namespace g4 {
namespace {

using ::g4::testing::CheckAllCollectives;
using ::g4::testing::HardTimeLimit;
using ::g4::testing::RunRanksAsProcesses;
using ::g4::testing::ScopedTempDir;

enum ExitCode { kOk = 0, kConnectFailed = 10, kCollectiveFailed = 11 };

class GlooProcessesTest : public ::testing::TestWithParam<int> {};

TEST_P(GlooProcessesTest, AllCollectivesAreCorrect) {
  HardTimeLimit limit(60);
  const int size = GetParam();
  ScopedTempDir dir{"g4comm"};
  std::vector<int> codes = RunRanksAsProcesses(size, [&](int rank) {
    DirectoryKeyValueStore store(dir.path());
    GlooOptions o;
    o.rank = rank;
    o.size = size;
    o.store = &store;
    o.prefix = "test/procs";
    o.timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Communicator>> comm = CreateGlooCommunicator(o);
    if (!comm.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, comm.status().ToString().c_str());
      return int{kConnectFailed};
    }
    const absl::Status status = CheckAllCollectives(**comm);
    if (!status.ok()) {
      std::fprintf(stderr, "rank %d: %s\n", rank, status.ToString().c_str());
      return int{kCollectiveFailed};
    }
    return int{kOk};
  });
  for (int r = 0; r < size; ++r) EXPECT_EQ(codes[r], kOk) << "rank " << r;
}

INSTANTIATE_TEST_SUITE_P(Sizes, GlooProcessesTest, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return absl::StrCat("Ranks", info.param);
                         });

}  // namespace
}  // namespace g4
