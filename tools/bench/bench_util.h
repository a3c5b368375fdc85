// Small helpers the step-cost benchmarks share (block_manager_bench.cc, scheduler_bench.cc):
// thread CPU time, percentiles.
#ifndef G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_
#define G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_

#include <time.h>

#include <algorithm>
#include <vector>

namespace g4::bench {

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
