// The scheduler's cost per engine step (worker/engine/scheduler.h, with paged KV): N running
// sequences decode one token per step; each step is ScheduleStep (admission checks, slot
// allocation, preemption checks) plus what the engine does after it on the KV side (table delta,
// prefix-cache commit). Two budgets in the same run: the token budget (the baseline) and the
// cost model (StepCostModel, docs/long_context.md), whose per-chunk cost adds arithmetic. Goal:
// <= 100 us per step at 256 sequences (docs/performance.md). Times are thread CPU time, so a
// loaded machine does not inflate them much; wall time is printed as well.
//
// Usage: g4-bench-scheduler [--seqs 256] [--steps 2000] [--prompt 100]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "common/flags/flag_set.h"
#include "tools/bench/bench_util.h"
#include "worker/engine/scheduler.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace {

using ::g4::bench::CpuMicros;
using ::g4::bench::Percentile;

struct Args {
  int seqs = 256;
  int steps = 2000;
  int prompt = 100;
};

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "error: %s\n", what);
  std::exit(1);
}

struct Result {
  double cpu_p50, cpu_p99, wall_p50, wall_p99;
};

Result Run(const Args& a, const g4::SchedulerOptions& options) {
  g4::KvBlockManagerOptions ko;
  ko.block_size = 16;
  ko.sliding_window = 1024;
  const int64_t max_len = a.prompt + a.steps + 2;
  ko.num_global_pages = int64_t{a.seqs} * ((max_len + 15) / 16 + 1);
  ko.num_sliding_pages = int64_t{a.seqs} * ((ko.sliding_window + a.prompt) / 16 + 2);
  auto kv_or = g4::KvBlockManager::Create(ko);
  if (!kv_or.ok()) Die(kv_or.status().ToString().c_str());
  g4::KvBlockManager& kv = **kv_or;

  std::vector<std::unique_ptr<g4::Sequence>> seqs;
  std::vector<g4::Sequence*> running, waiting;
  for (int i = 0; i < a.seqs; ++i) {
    auto s = std::make_unique<g4::Sequence>();
    s->seq_id = i + 1;
    s->arrival = i + 1;
    s->request.prompt.assign(a.prompt, 5);
    s->request.prompt[0] = i;  // distinct prompts: no prefix sharing
    s->tokens = s->request.prompt;
    waiting.push_back(s.get());
    seqs.push_back(std::move(s));
  }
  // "Runs" a step: the chunks' KV is written, a token sampled for those that sample.
  auto ran = [&kv](const std::vector<g4::ScheduledChunk>& chunks) {
    for (const g4::ScheduledChunk& c : chunks) {
      (void)kv.TakeDelta(c.seq->seq_id);
      c.seq->num_computed += c.len;
      if (!kv.CommitFullBlocks(c.seq->seq_id, absl::MakeConstSpan(c.seq->tokens.data(),
                                                                   c.seq->num_computed))
               .ok()) {
        Die("commit");
      }
      if (c.samples) c.seq->tokens.push_back(7);
    }
  };
  // Prefill (untimed) until every sequence decodes.
  while (!waiting.empty() || std::any_of(running.begin(), running.end(), [](g4::Sequence* s) {
           return static_cast<int64_t>(s->tokens.size()) - s->num_computed > 1;
         })) {
    g4::KvScheduleEvents ev;
    ran(g4::ScheduleStep(options, running, waiting, &kv, &ev));
  }

  std::vector<double> cpu, wall;
  for (int step = 0; step < a.steps; ++step) {
    const double c0 = CpuMicros();
    const auto t0 = std::chrono::steady_clock::now();
    g4::KvScheduleEvents ev;
    const std::vector<g4::ScheduledChunk> chunks =
        g4::ScheduleStep(options, running, waiting, &kv, &ev);
    ran(chunks);
    wall.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(CpuMicros() - c0);
    if (static_cast<int>(chunks.size()) != a.seqs || !ev.preempted.empty()) {
      Die("a step did not decode every sequence");
    }
  }
  if (!kv.Validate().ok()) Die("KV invariants");
  return {Percentile(cpu, 0.5), Percentile(cpu, 0.99), Percentile(wall, 0.5),
          Percentile(wall, 0.99)};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  g4::FlagSet flags("g4-bench-scheduler", "[flags]",
                    "Cost per engine step of the scheduler with paged KV: N running sequences "
                    "decode one token per step, under the token budget (baseline) and the cost "
                    "model. docs/performance.md.");
  flags.Add("seqs", &a.seqs, "running sequences").Min(1);
  flags.Add("steps", &a.steps, "measured steps per budget").Min(1);
  flags.Add("prompt", &a.prompt, "prompt tokens of each sequence").Min(1);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-scheduler", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  g4::SchedulerOptions tokens;
  tokens.max_num_seqs = a.seqs;
  tokens.max_num_batched_tokens = 8192;
  g4::SchedulerOptions cost = tokens;
  // Of the order of the tiny models' analytic values (StepCostModel::FromConfig).
  cost.cost.global_per_pair = 2e-4;
  cost.cost.sliding_per_pair = 1e-3;
  cost.cost.sliding_window = 1024;

  std::printf("paged decode step, %d sequences, %d steps, prompt %d, block 16, window 1024\n",
              a.seqs, a.steps, a.prompt);
  std::printf("| budget | cpu p50 us | cpu p99 us | wall p50 us | wall p99 us |\n");
  std::printf("|---|---|---|---|---|\n");
  const Result base = Run(a, tokens);
  std::printf("| tokens (baseline) | %.1f | %.1f | %.1f | %.1f |\n", base.cpu_p50, base.cpu_p99,
              base.wall_p50, base.wall_p99);
  const Result model = Run(a, cost);
  std::printf("| cost model | %.1f | %.1f | %.1f | %.1f |\n", model.cpu_p50, model.cpu_p99,
              model.wall_p50, model.wall_p99);
  return 0;
}
