// Block-manager cost per engine step (docs/kv_cache.md): N running sequences decode one token
// per step; each step does, per sequence, the admission check, the slot allocation (global page
// growth, sliding-window recycling), the block-table delta for the step descriptor and the
// prefix-cache commit of newly filled blocks. Goal: <= 100 us per step at 256 sequences.
//
// Scenarios:
//   decode        steady decode, no arrivals
//   decode+churn  plus one finish and one arrival per step (prefix-cache match on a shared
//                 1024-token system prompt, then a 512-token prefill chunk)
//
// Usage: g4-bench-block-manager [--seqs=256] [--steps=4000] [--block=16] [--window=1024]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/flags/flag_set.h"
#include "tools/bench/bench_util.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace {

using ::g4::bench::CpuMicros;
using ::g4::bench::Percentile;

struct Args {
  int seqs = 256;
  int steps = 4000;
  int block = 16;
  int window = 1024;
};

struct Result {
  std::string name;
  double p50, p99, max, mean;
  double cpu_p50, cpu_p99;
  g4::PoolUsage global, sliding;
};

void Die(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  std::exit(1);
}

Result Run(const Args& a, bool churn) {
  std::mt19937_64 rng(42);
  const int kSystem = 1024, kMinPrompt = 1536, kMaxPrompt = 4096, kChunk = 512;
  g4::KvBlockManagerOptions o;
  o.block_size = a.block;
  o.sliding_window = a.window;
  const int64_t max_len = kMaxPrompt + a.steps + kChunk;
  o.num_global_pages = int64_t{a.seqs + 8} * ((max_len + a.block - 1) / a.block + 1);
  o.num_sliding_pages = int64_t{a.seqs + 8} * ((a.window + kChunk) / a.block + 2) * 2;
  auto m_or = g4::KvBlockManager::Create(o);
  if (!m_or.ok()) Die(m_or.status());
  g4::KvBlockManager& m = **m_or;

  std::vector<int32_t> system(kSystem);
  for (auto& t : system) t = static_cast<int32_t>(rng() % 262144);
  struct S {
    uint64_t id;
    std::vector<int32_t> tokens;
    int64_t computed;
  };
  uint64_t next_id = 1;
  auto make_prompt = [&]() {
    std::vector<int32_t> t = system;
    const int len = kMinPrompt + static_cast<int>(rng() % (kMaxPrompt - kMinPrompt));
    t.reserve(len + a.steps + 1);
    while (static_cast<int>(t.size()) < len) t.push_back(rng() % 262144);
    return t;
  };
  auto new_seq = [&](std::vector<int32_t> prompt) {
    S s{next_id++, std::move(prompt), 0};
    auto cached = m.AddSequence(s.id, s.tokens);
    if (!cached.ok()) Die(cached.status());
    s.computed = *cached;
    return s;
  };
  // Prefill (untimed) so that every sequence is decoding.
  std::vector<S> seqs;
  for (int i = 0; i < a.seqs; ++i) {
    S s = new_seq(make_prompt());
    // All but the last prompt token; decoding feeds that one first.
    const int64_t n = static_cast<int64_t>(s.tokens.size()) - 1 - s.computed;
    if (auto st = m.Allocate(s.id, n); !st.ok()) Die(st);
    s.computed += n;
    if (auto st = m.CommitFullBlocks(s.id, absl::Span<const int32_t>(s.tokens.data(), s.computed));
        !st.ok()) {
      Die(st);
    }
    m.TakeDelta(s.id);
    seqs.push_back(std::move(s));
  }

  std::vector<double> us, cpu;
  us.reserve(a.steps);
  cpu.reserve(a.steps);
  size_t deltas = 0;
  for (int step = 0; step < a.steps; ++step) {
    std::vector<int32_t> arrival = churn ? make_prompt() : std::vector<int32_t>();
    const double c0 = CpuMicros();
    const auto t0 = std::chrono::steady_clock::now();
    if (churn) {
      // One finish, one arrival (prefix match + first chunk).
      if (auto st = m.Free(seqs[step % seqs.size()].id); !st.ok()) Die(st);
      S s = new_seq(std::move(arrival));
      const int64_t n =
          std::min<int64_t>(kChunk, static_cast<int64_t>(s.tokens.size()) - 1 - s.computed);
      if (!m.CanAllocate(s.id, n)) Die(absl::ResourceExhaustedError("admission"));
      if (auto st = m.Allocate(s.id, n); !st.ok()) Die(st);
      s.computed += n;
      if (auto st =
              m.CommitFullBlocks(s.id, absl::Span<const int32_t>(s.tokens.data(), s.computed));
          !st.ok()) {
        Die(st);
      }
      deltas += m.TakeDelta(s.id).global_append.size();
      // Finish its prefill in the untimed part below, then it replaces the finished one.
      seqs[step % seqs.size()] = std::move(s);
    }
    for (S& s : seqs) {
      const int64_t n = static_cast<int64_t>(s.tokens.size()) - s.computed;
      if (n != 1) continue;  // a churn arrival still prefilling
      if (!m.CanAllocate(s.id, 1)) Die(absl::ResourceExhaustedError("decode"));
      if (auto st = m.Allocate(s.id, 1); !st.ok()) Die(st);
      const g4::BlockTableDelta d = m.TakeDelta(s.id);
      deltas += d.global_append.size() + d.sliding_append.size();
      // "Run" the step: the token's KV is written, a new token is sampled.
      s.computed += 1;
      if (auto st =
              m.CommitFullBlocks(s.id, absl::Span<const int32_t>(s.tokens.data(), s.computed));
          !st.ok()) {
        Die(st);
      }
      s.tokens.push_back(static_cast<int32_t>(s.id + step));
    }
    const auto t1 = std::chrono::steady_clock::now();
    cpu.push_back(CpuMicros() - c0);
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (churn) {  // untimed: finish the arrival's prefill so it decodes next step
      S& s = seqs[step % seqs.size()];
      const int64_t n = static_cast<int64_t>(s.tokens.size()) - s.computed;
      if (n > 0) {
        if (auto st = m.Allocate(s.id, n - 1); !st.ok()) Die(st);
        s.computed += n - 1;
        m.TakeDelta(s.id);
      }
    }
  }
  if (auto st = m.Validate(); !st.ok()) Die(st);
  if (deltas == 0) std::fprintf(stderr, "no table changes?\n");
  double sum = 0;
  for (double v : us) sum += v;
  return Result{churn ? "decode+churn" : "decode",
                Percentile(us, 0.5),
                Percentile(us, 0.99),
                *std::max_element(us.begin(), us.end()),
                sum / us.size(),
                Percentile(cpu, 0.5),
                Percentile(cpu, 0.99),
                m.Usage(g4::KvPool::kGlobal),
                m.Usage(g4::KvPool::kSliding)};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  g4::FlagSet flags("g4-bench-block-manager", "[flags]",
                    "Cost per step of the KV block manager: steady decode, and decode with a "
                    "finish and a prefix-matched arrival every step. docs/kv_cache.md.");
  flags.Add("seqs", &a.seqs, "running sequences").Min(1);
  flags.Add("steps", &a.steps, "steps per scenario").Min(1);
  flags.Add("block", &a.block, "tokens per page").Min(1);
  flags.Add("window", &a.window, "sliding window in tokens").Min(1);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-block-manager", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  std::printf("block manager cost per step: %d sequences, %d steps, block %d, window %d\n", a.seqs,
              a.steps, a.block, a.window);
  std::printf("%-14s %8s %8s %8s %8s %8s %8s %14s %14s\n", "scenario", "p50_us", "p99_us", "max_us",
              "mean_us", "cpu_p50", "cpu_p99", "global_used", "sliding_used");
  for (bool churn : {false, true}) {
    const Result r = Run(a, churn);
    std::printf("%-14s %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %7lld/%-6lld %7lld/%-6lld\n",
                r.name.c_str(), r.p50, r.p99, r.max, r.mean, r.cpu_p50, r.cpu_p99,
                static_cast<long long>(r.global.used), static_cast<long long>(r.global.total),
                static_cast<long long>(r.sliding.used), static_cast<long long>(r.sliding.total));
  }
  return 0;
}
