// Small helpers the step-cost benchmarks share (block_manager_bench.cc, scheduler_bench.cc):
// `--name=N` integer flags, thread CPU time, percentiles.
#ifndef G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_
#define G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/numbers.h"

namespace g4::bench {

// True when `arg` is `name=N` (N >= 1, stored in *out); exits with status 2 on a bad N.
inline bool ParseFlag(const char* arg, const char* name, int* out) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  if (!absl::SimpleAtoi(arg + n + 1, out) || *out < 1) {
    std::fprintf(stderr, "bad value: %s\n", arg);
    std::exit(2);
  }
  return true;
}

// Thread CPU time: on a loaded machine wall time includes time the thread was not running.
inline double CpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

// The q-quantile (0..1) of `v`, nearest rank.
inline double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace g4::bench

#endif  // G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_
