// Global-layer attention on the CPU backend with K derived from V (the k_eq_v layout: the cache
// holds V only, AttentionShape::k_derive) against the stored-K path it replaced, in the same run
// on the same data (docs/kv_cache.md, docs/performance.md). Goal: derived K costs at most 15%
// more time than stored K.
//
// Shapes are the 31B's global layers (head_dim 512, proportional RoPE: 64 of 256 pairs rotate)
// at `--context` keys: decode (one query at the last position) and a prefill chunk (the last
// positions), for one rank (32 query / 4 KV heads; a chunk of `--chunk`/4 queries, to bound the
// run time) and for a tensor-parallel-8 rank (4 query heads, the replicated KV head; `--chunk`
// queries). Stored and derived runs alternate; each reports the
// median and minimum of `--reps` runs, in process CPU time (with the default single OpenBLAS
// thread that is the call's compute time; unlike wall time it does not count the time the
// thread waited for a core on a loaded machine). The derived runs go through one CpuOps, whose
// cos/sin table is built by a first, untimed call and reused after, as in serving; the one-time
// cost of building it for `--context` positions is printed separately. Every derived output is
// checked to equal the stored one bit for bit.
//
// Usage: g4-bench-derived-k-attention [--context 32768] [--chunk 256] [--reps 7] [--threads 1]
// (--help lists the flags).
#include <cblas.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/flags/flag_set.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/rope_table.h"
#include "kernels/ops.h"

namespace {

struct Args {
  int context = 32768;
  int chunk = 256;
  int reps = 7;
  int threads = 1;
};

void DeclareFlags(g4::FlagSet& flags, Args& a) {
  flags.Add("context", &a.context, "keys in the cache (the position of the decode query)").Min(1);
  flags.Add("chunk", &a.chunk, "prefill chunk queries (a quarter of them on the 1-rank shape)")
      .Min(1);
  flags.Add("reps", &a.reps, "timed runs of each case; median and minimum reported").Min(1);
  flags.Add("threads", &a.threads, "OpenBLAS threads").Min(1);
}

constexpr int kHeadDim = 512;
constexpr float kEps = 1e-6f;

// Process CPU time in ms.
double CpuMillis() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One rank's global-layer cache at `keys` positions: V = RmsNorm(r), K = Rope(RmsNorm(r; w)).
struct Cache {
  int kv_heads = 0;
  std::vector<float> k, v, k_norm, inv_freq;
};

Cache MakeCache(int kv_heads, int keys, std::mt19937& rng) {
  Cache c;
  c.kv_heads = kv_heads;
  const int64_t width = int64_t{kv_heads} * kHeadDim;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> weight(0.7f, 1.3f);
  std::vector<float> raw(keys * width);
  for (float& x : raw) x = normal(rng);
  c.k_norm.resize(kHeadDim);
  for (float& w : c.k_norm) w = weight(rng);
  c.inv_freq.assign(kHeadDim / 2, 0.0f);  // proportional RoPE, theta 1e6, a quarter rotates
  for (int i = 0; i < kHeadDim / 8; ++i) {
    c.inv_freq[i] = 1.0f / std::pow(1e6f, static_cast<float>(2 * i) / kHeadDim);
  }
  c.k.resize(raw.size());
  c.v.resize(raw.size());
  const int64_t rows = int64_t{keys} * kv_heads;
  g4::cpu::RmsNorm(c.k.data(), raw.data(), c.k_norm.data(), rows, kHeadDim, kEps);
  g4::cpu::RmsNorm(c.v.data(), raw.data(), nullptr, rows, kHeadDim, kEps);
  std::vector<int64_t> positions(keys);
  for (int j = 0; j < keys; ++j) positions[j] = j;
  g4::cpu::Rope(c.k.data(), positions.data(), c.inv_freq.data(), keys, kv_heads, kHeadDim, width);
  return c;
}

struct Row {
  std::string name;
  int heads, kv_heads, queries, keys;
  double stored_med, stored_min, derived_med, derived_min;
  bool identical;
};

Row Run(const std::string& name, int heads, const Cache& cache, int queries, int keys, int reps,
        std::mt19937& rng) {
  g4::AttentionShape s;
  s.num_queries = queries;
  s.q_pos0 = keys - queries;
  s.num_keys = keys;
  s.k_pos0 = 0;
  s.num_heads = heads;
  s.num_kv_heads = cache.kv_heads;
  s.head_dim = kHeadDim;
  s.q_stride = int64_t{heads} * kHeadDim;
  s.kv_stride = int64_t{cache.kv_heads} * kHeadDim;
  s.scale = 1.0f;
  g4::AttentionShape d = s;
  d.k_derive.k_norm = cache.k_norm.data();
  d.k_derive.inv_freq = cache.inv_freq.data();

  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> q(queries * s.q_stride);
  for (float& x : q) x = normal(rng);
  std::vector<float> out_stored(q.size()), out_derived(q.size());
  std::unique_ptr<g4::Ops> ops = g4::CreateCpuOps();  // fresh: its cos/sin table is empty

  Row r{name, heads, cache.kv_heads, queries, keys, 0, 0, 0, 0, true};
  ops->Attention(out_derived.data(), q.data(), nullptr, cache.v.data(), d);  // builds the table
  double t0;
  std::vector<double> stored, derived;
  for (int i = 0; i < reps; ++i) {
    t0 = CpuMillis();
    ops->Attention(out_stored.data(), q.data(), cache.k.data(), cache.v.data(), s);
    stored.push_back(CpuMillis() - t0);
    t0 = CpuMillis();
    ops->Attention(out_derived.data(), q.data(), nullptr, cache.v.data(), d);
    derived.push_back(CpuMillis() - t0);
    r.identical = r.identical && out_stored == out_derived;
  }
  r.stored_med = Median(stored);
  r.stored_min = *std::min_element(stored.begin(), stored.end());
  r.derived_med = Median(derived);
  r.derived_min = *std::min_element(derived.begin(), derived.end());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  g4::FlagSet flags("g4-bench-derived-k-attention", "[flags]",
                    "Global-layer attention (31B shapes) with K derived from V against stored K, "
                    "in the same run (docs/kv_cache.md, docs/performance.md).");
  DeclareFlags(flags, a);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-derived-k-attention", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  if (a.chunk > a.context) a.chunk = a.context;
  openblas_set_num_threads(a.threads);
  std::mt19937 rng(7);
  std::printf("Global-layer attention, head_dim 512, %d keys, %d OpenBLAS thread(s), %d reps, "
              "process CPU time\n\n",
              a.context, a.threads, a.reps);
  std::vector<Row> rows;
  {
    const Cache one_rank = MakeCache(4, a.context, rng);  // 31B: 4 global KV heads
    rows.push_back(Run("decode, 1 rank", 32, one_rank, 1, a.context, a.reps, rng));
    rows.push_back(Run("prefill chunk, 1 rank", 32, one_rank, std::max(1, a.chunk / 4), a.context,
                       a.reps, rng));
  }
  {
    const Cache tp8 = MakeCache(1, a.context, rng);  // TP 8: one (replicated) KV head per rank
    rows.push_back(Run("decode, TP-8 rank", 4, tp8, 1, a.context, a.reps, rng));
    rows.push_back(Run("prefill chunk, TP-8 rank", 4, tp8, a.chunk, a.context, a.reps, rng));
  }
  std::printf(
      "| case | q/kv heads | queries | stored K ms (median / min) | derived K ms (median / min) "
      "| derived / stored (median, min) | same bits |\n"
      "|---|---|---|---|---|---|---|\n");
  bool all_identical = true;
  for (const Row& r : rows) {
    std::printf("| %s | %d/%d | %d | %.1f / %.1f | %.1f / %.1f | %.3f, %.3f | %s |\n",
                r.name.c_str(), r.heads, r.kv_heads, r.queries, r.stored_med, r.stored_min,
                r.derived_med, r.derived_min, r.derived_med / r.stored_med,
                r.derived_min / r.stored_min, r.identical ? "yes" : "NO");
    all_identical = all_identical && r.identical;
  }
  // The one-time cost the steady state above excludes: cos/sin for every position once.
  const Cache any = MakeCache(1, 1, rng);
  g4::cpu::RopeTable table;
  const double t0 = CpuMillis();
  table.Cover(any.inv_freq.data(), kHeadDim / 2, a.context);
  std::printf("\ncos/sin table for %d positions (built once per process, then reused): %.1f ms\n",
              a.context, CpuMillis() - t0);
  return all_identical ? 0 : 1;
}
