// g4-bench-step-control: the per-step control overhead of a replica on loopback — the leader
// broadcasts a step descriptor over the Gloo CPU channel and the ranks synchronize — for 2 and 4
// ranks as separate processes (as workers run). Prints a table of per-step latency.
//
//   g4-bench-step-control [--ranks 2,4] [--steps 2000] [--seqs 64] [--broadcast-only]
//
// --broadcast-only leaves out the barrier: what the engine pays per step (the followers' first
// collective of the forward synchronizes anyway).
//
// `--seqs` decode sequences per step (one token each) set the descriptor size.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/flags/flag_set.h"
#include "worker/comm/gloo_communicator.h"
#include "worker/comm/key_value_store.h"
#include "worker/engine/step_descriptor.h"
#include "tools/bench/bench_util.h"

namespace {

struct Options {
  bool barrier = true;  // synchronize every step (off: the broadcast alone)
  std::vector<int> ranks = {2, 4};
  int steps = 2000;
  int seqs = 64;
};

// Runs one rank; rank 0 writes per-step microseconds to `out_path`.
int RunRank(int rank, int size, const std::string& dir, const Options& o,
            const std::string& out_path) {
  g4::DirectoryKeyValueStore store(dir);
  g4::GlooOptions go;
  go.rank = rank;
  go.size = size;
  go.store = &store;
  go.prefix = "bench";
  go.timeout = absl::Seconds(30);
  auto comm = g4::CreateGlooCommunicator(go);
  if (!comm.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, std::string(comm.status().message()).c_str());
    return 1;
  }
  g4::StepDescriptor step;
  for (int i = 0; i < o.seqs; ++i) step.chunks.push_back({static_cast<uint64_t>(i + 1), 100, {7}, {}});
  std::vector<double> micros;
  const int warmup = std::min(200, o.steps / 10);
  for (int s = 0; s < o.steps + warmup; ++s) {
    const absl::Time t0 = absl::Now();
    std::string bytes;
    if (rank == 0) {
      step.step = s;
      bytes = step.Serialize();
    }
    if (!(*comm)->BroadcastBytes(&bytes, 0).ok()) return 1;
    if (rank != 0 && !g4::StepDescriptor::Parse(bytes).ok()) return 1;
    if (o.barrier && !(*comm)->Barrier().ok()) return 1;
    if (s >= warmup) micros.push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
  }
  if (rank == 0) {
    FILE* f = std::fopen(out_path.c_str(), "w");
    for (double m : micros) std::fprintf(f, "%.3f\n", m);
    std::fclose(f);
  }
  return 0;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  g4::FlagSet flags("g4-bench-step-control", "[flags]",
                    "Per-step control overhead: the step descriptor broadcast (and a barrier) over "
                    "Gloo TCP on loopback, ranks as processes. docs/performance.md.");
  flags.AddCustom("ranks", "N,N,...", "replica sizes to measure", [&o](absl::string_view v) {
         return g4::bench::ParsePositiveInts(v, &o.ranks)
                    ? absl::OkStatus()
                    : absl::InvalidArgumentError("expected positive integers like 2,4");
       }).Default("2,4");
  flags.Add("steps", &o.steps, "steps per size").Min(1);
  flags.Add("seqs", &o.seqs, "decode sequences in each descriptor").Min(0);
  flags.AddSwitch("broadcast-only", "no barrier: the broadcast alone",
                  [&o](bool on) { o.barrier = !on; });
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-step-control", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  g4::StepDescriptor probe;
  for (int i = 0; i < o.seqs; ++i) probe.chunks.push_back({static_cast<uint64_t>(i + 1), 100, {7}, {}});
  std::printf("per-step control overhead: descriptor broadcast (%zu bytes, %d decode sequences)%s, Gloo TCP on loopback, ranks as processes\n",
              probe.Serialize().size(), o.seqs, o.barrier ? " + barrier" : "");
  std::printf("%-6s %10s %10s %10s %10s\n", "ranks", "p50 us", "p90 us", "p99 us", "mean us");
  for (int size : o.ranks) {
    char tmpl[] = "/tmp/g4-bench-step-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    const std::string out = dir + "/rank0.txt";
    std::vector<pid_t> pids;
    for (int r = 0; r < size; ++r) {
      const pid_t pid = fork();
      if (pid == 0) _exit(RunRank(r, size, dir, o, out));
      pids.push_back(pid);
    }
    bool ok = true;
    for (pid_t p : pids) {
      int st = 0;
      waitpid(p, &st, 0);
      ok = ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    std::vector<double> v;
    if (FILE* f = std::fopen(out.c_str(), "r")) {
      double x;
      while (std::fscanf(f, "%lf", &x) == 1) v.push_back(x);
      std::fclose(f);
    }
    std::filesystem::remove_all(dir);
    if (!ok || v.empty()) {
      std::fprintf(stderr, "g4-bench-step-control: %d ranks failed\n", size);
      return 1;
    }
    double mean = 0;
    for (double x : v) mean += x;
    mean /= v.size();
    std::printf("%-6d %10.1f %10.1f %10.1f %10.1f\n", size, Percentile(v, 0.5), Percentile(v, 0.9),
                Percentile(v, 0.99), mean);
  }
  return 0;
}
