// Helpers for the communicator tests: a hard time limit per test, ranks as threads, ranks as
// forked processes, temporary directories and deterministic test data.
#ifndef G4SERVE_TESTS_WORKER_COMM_COMM_TEST_UTIL_H_
#define G4SERVE_TESTS_WORKER_COMM_COMM_TEST_UTIL_H_

#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace g4::testing {

// Kills the test process with SIGALRM if the test runs past `seconds`: a hang is a failure,
// never a stuck CI job. (alarm() is per process, so forked children set their own.)
class HardTimeLimit {
 public:
  explicit HardTimeLimit(unsigned seconds) { alarm(seconds); }
  ~HardTimeLimit() { alarm(0); }
};

// Runs fn(rank) for rank in [0, size) on `size` threads and returns the per-rank statuses.
inline std::vector<absl::Status> RunRanksAsThreads(int size,
                                                   const std::function<absl::Status(int)>& fn) {
  std::vector<absl::Status> statuses(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&statuses, &fn, r] { statuses[r] = fn(r); });
  }
  for (std::thread& t : threads) t.join();
  return statuses;
}

// Forks `size` children; child `rank` runs fn(rank) under a `child_limit_s` alarm and exits with
// its return value. Returns the children's exit codes (128 + signal when killed; -1 when the
// parent had to kill a child that outlived `child_limit_s` + 5 s).
inline std::vector<int> RunRanksAsProcesses(int size, const std::function<int(int)>& fn,
                                            unsigned child_limit_s = 20) {
  std::fflush(nullptr);
  std::vector<pid_t> pids(size, -1);
  for (int r = 0; r < size; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(child_limit_s);
      const int code = fn(r);
      std::fflush(nullptr);
      _exit(code);
    }
    pids[r] = pid;
  }
  std::vector<int> codes(size, -1);
  const absl::Time deadline = absl::Now() + absl::Seconds(child_limit_s + 5);
  int remaining = 0;
  for (pid_t p : pids) remaining += p > 0 ? 1 : 0;
  while (remaining > 0 && absl::Now() < deadline) {
    for (int r = 0; r < size; ++r) {
      if (pids[r] <= 0) continue;
      int wstatus = 0;
      const pid_t done = waitpid(pids[r], &wstatus, WNOHANG);
      if (done == pids[r]) {
        codes[r] = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
        pids[r] = -1;
        --remaining;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (int r = 0; r < size; ++r) {
    if (pids[r] > 0) {
      kill(pids[r], SIGKILL);
      waitpid(pids[r], nullptr, 0);
    }
  }
  return codes;
}

// Integer-valued floats in [-100, 100], so sums are exact and comparisons need no tolerance.
inline std::vector<float> RankData(int rank, int64_t count, uint32_t salt = 0) {
  std::mt19937 gen(1000u + 7919u * salt + static_cast<uint32_t>(rank));
  std::uniform_int_distribution<int> dist(-100, 100);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(dist(gen));
  return v;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_WORKER_COMM_COMM_TEST_UTIL_H_
