// Small helpers the benchmarks share (block_manager_bench.cc, scheduler_bench.cc,
// coordinator_bench.cc, https_bench.cc): thread and process CPU time, percentiles.
#ifndef G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_
#define G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace g4::bench {

// Thread CPU time: on a loaded machine wall time includes time the thread was not running.
inline double CpuMicros() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

// utime + stime of process `pid` (all its threads), in seconds, from /proc.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  const size_t close = line.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::vector<std::string> f = absl::StrSplit(line.substr(close + 2), ' ');
  // After "(comm) ": state is field 3, utime field 14, stime field 15 (1-based, man proc).
  if (f.size() < 13) return 0;
  double utime = 0, stime = 0;
  (void)absl::SimpleAtod(f[11], &utime);
  (void)absl::SimpleAtod(f[12], &stime);
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// "8,64,256": a flag's comma-separated list of positive integers (at least one); false, with
// `out` cleared, for anything else.
inline bool ParsePositiveInts(absl::string_view text, std::vector<int>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int v = 0;
    if (!absl::SimpleAtoi(part, &v) || v < 1) {
      out->clear();
      return false;
    }
    out->push_back(v);
  }
  return !out->empty();
}

// The q-quantile (0..1) of `v`, nearest rank.
inline double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace g4::bench

#endif  // G4SERVE_TOOLS_BENCH_BENCH_UTIL_H_
