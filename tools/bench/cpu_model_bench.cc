// g4-bench-cpu: prefill and decode throughput of the CPU reference model (batch 1).
//   g4-bench-cpu --model DIR [--prompt-len 512] [--decode-steps 64] [--threads 0] [--repeats 3]
//                [--json] [--profile]
// Loads the checkpoint, runs one untimed warmup (a short prefill and a few decode steps), then
// `repeats` timed runs, each on a fresh sequence: a prefill of `prompt-len` deterministic
// pseudo-random tokens in [3, vocab) (logits for the last token only), then `decode-steps`
// single-token steps feeding back the argmax. Reports the median and the best run. --threads 0
// keeps OpenBLAS's default. Prints a table, or one JSON object with --json. Errors: one line on
// stderr, exit 2. --profile wraps the ops in a timer and prints, to stderr, where the timed runs'
// time went per op (Linear by [n, k] shape), prefill and decode apart. A benchmark, not a test:
// see docs/performance.md.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/types/span.h"
#include "common/flags/flag_set.h"
#include "kernels/ops.h"
#include "worker/model/gemma4_model.h"

namespace {

struct Options {
  std::string model_dir;
  int prompt_len = 512;
  int decode_steps = 64;
  int threads = 0;
  int repeats = 3;
  bool json = false;
  bool profile = false;
};

void DeclareFlags(g4::FlagSet& flags, Options& o) {
  flags.Add("model", &o.model_dir, "model directory").Value("DIR").Required().NonEmpty();
  flags.Add("prompt-len", &o.prompt_len, "prefill length in tokens").Value("P").Min(1);
  flags.Add("decode-steps", &o.decode_steps, "decode steps after the prefill").Min(0);
  flags.Add("threads", &o.threads, "BLAS threads; 0 = OpenBLAS's default").Value("T").Min(0);
  flags.Add("repeats", &o.repeats, "runs; the best is reported").Value("R").Min(1);
  flags.Add("json", &o.json, "print JSON");
  flags.Add("profile", &o.profile, "time every op by phase");
}

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Ops decorator that adds each call's wall time to a per-op bucket of the current phase.
class TimingOps : public g4::Ops {
 public:
  explicit TimingOps(std::unique_ptr<g4::Ops> inner) : inner_(std::move(inner)) {}

  struct Bucket {
    double seconds = 0;
    int64_t calls = 0;
  };
  // Phase name -> op name -> time; nothing is recorded while the phase is empty.
  std::map<std::string, std::map<std::string, Bucket>> buckets;
  std::string phase;

  void Linear(float* y, const float* x, const float* w, int64_t m, int64_t n,
              int64_t k) override {
    Time(absl::StrCat("Linear n=", n, " k=", k), [&] { inner_->Linear(y, x, w, m, n, k); });
  }
  void RmsNorm(float* y, const float* x, const float* w, int64_t rows, int64_t n,
               float eps) override {
    Time("RmsNorm", [&] { inner_->RmsNorm(y, x, w, rows, n, eps); });
  }
  void Rope(float* x, const int64_t* positions, const float* inv_freq, int64_t tokens, int heads,
            int head_dim, int64_t stride) override {
    Time("Rope", [&] { inner_->Rope(x, positions, inv_freq, tokens, heads, head_dim, stride); });
  }
  void GeluTanhMul(float* out, const float* gate, const float* up, int64_t n) override {
    Time("GeluTanhMul", [&] { inner_->GeluTanhMul(out, gate, up, n); });
  }
  void Embed(float* out, const float* table, const int32_t* ids, int64_t tokens, int64_t dim,
             float scale) override {
    Time("Embed", [&] { inner_->Embed(out, table, ids, tokens, dim, scale); });
  }
  void Add(float* x, const float* y, int64_t n) override {
    Time("Add", [&] { inner_->Add(x, y, n); });
  }
  void Scale(float* x, float s, int64_t n) override {
    Time("Scale", [&] { inner_->Scale(x, s, n); });
  }
  void Mul(float* x, const float* y, int64_t n) override {
    Time("Mul", [&] { inner_->Mul(x, y, n); });
  }
  void Softcap(float* x, float cap, int64_t n) override {
    Time("Softcap", [&] { inner_->Softcap(x, cap, n); });
  }
  void Attention(float* out, const float* q, const float* k, const float* v,
                 const g4::AttentionShape& shape) override {
    Time(absl::StrCat("Attention d=", shape.head_dim, shape.window > 0 ? " sliding" : " full"),
         [&] { inner_->Attention(out, q, k, v, shape); });
  }
  void RouteTopK(int32_t* experts, float* weights, const float* logits,
                 const float* per_expert_scale, int64_t tokens, int num_experts,
                 int k) override {
    Time("RouteTopK", [&] {
      inner_->RouteTopK(experts, weights, logits, per_expert_scale, tokens, num_experts, k);
    });
  }

 private:
  template <typename F>
  void Time(const std::string& name, F&& f) {
    if (phase.empty()) {
      f();
      return;
    }
    const Clock::time_point t0 = Clock::now();
    f();
    Bucket& b = buckets[phase][name];
    b.seconds += Seconds(t0, Clock::now());
    ++b.calls;
  }

  std::unique_ptr<g4::Ops> inner_;
};

// Deterministic tokens in [3, vocab) (splitmix-style LCG; same for every run).
std::vector<int32_t> PromptTokens(int n, int vocab) {
  std::vector<int32_t> t(n);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    t[i] = 3 + static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab - 3));
  }
  return t;
}

int32_t Argmax(const std::vector<float>& logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

struct RunTimes {
  double prefill_s = 0;
  double decode_s = 0;
  std::vector<int32_t> generated;  // argmax after the prefill and after each decode step
};

// One fresh sequence: prefill `prompt`, then `steps` greedy decode steps.
absl::StatusOr<RunTimes> RunOnce(g4::Gemma4Model& model, const std::vector<int32_t>& prompt,
                                 int steps, TimingOps* timer) {
  std::unique_ptr<g4::SequenceKvCache> cache = model.NewSequence();
  RunTimes r;
  if (timer != nullptr) timer->phase = "prefill";
  const Clock::time_point t0 = Clock::now();
  g4::SequenceChunk chunk{cache.get(), absl::MakeConstSpan(prompt)};
  absl::StatusOr<std::vector<float>> logits =
      model.Forward(absl::MakeConstSpan(&chunk, 1), g4::LogitsFor::kLastToken);
  if (!logits.ok()) return logits.status();
  int32_t next = Argmax(*logits);
  const Clock::time_point t1 = Clock::now();
  r.generated.reserve(steps + 1);
  r.generated.push_back(next);
  if (timer != nullptr) timer->phase = "decode";
  for (int i = 0; i < steps; ++i) {
    g4::SequenceChunk step{cache.get(), absl::MakeConstSpan(&next, 1)};
    logits = model.Forward(absl::MakeConstSpan(&step, 1), g4::LogitsFor::kLastToken);
    if (!logits.ok()) return logits.status();
    next = Argmax(*logits);
    r.generated.push_back(next);
  }
  const Clock::time_point t2 = Clock::now();
  if (timer != nullptr) timer->phase.clear();
  r.prefill_s = Seconds(t0, t1);
  r.decode_s = Seconds(t1, t2);
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "g4-bench-cpu: %s\n", std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  const Options* opts = &options;
  g4::FlagSet flags("g4-bench-cpu", "--model DIR [flags]",
                    "Prefill and decode speed of the CPU reference backend. docs/performance.md.");
  DeclareFlags(flags, options);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return g4::FlagError("g4-bench-cpu", s);
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  if (opts->threads > 0) openblas_set_num_threads(opts->threads);

  const Clock::time_point load0 = Clock::now();
  std::unique_ptr<g4::Ops> ops = g4::CreateCpuOps();
  TimingOps* timer = nullptr;
  if (opts->profile) {
    auto timing = std::make_unique<TimingOps>(std::move(ops));
    timer = timing.get();
    ops = std::move(timing);
  }
  absl::StatusOr<std::unique_ptr<g4::Gemma4Model>> model =
      g4::Gemma4Model::Load(opts->model_dir, std::move(ops));
  if (!model.ok()) return Fail(model.status());
  const double load_s = Seconds(load0, Clock::now());
  g4::Gemma4Model& m = **model;
  const int vocab = m.config().vocab_size;
  if (vocab <= 3) return Fail(absl::InvalidArgumentError("vocab_size must be > 3"));
  const int64_t max_pos = m.config().max_position_embeddings;
  if (opts->prompt_len + opts->decode_steps > max_pos) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--prompt-len + --decode-steps exceeds max_position_embeddings (", max_pos,
                     ")")));
  }

  const std::vector<int32_t> prompt = PromptTokens(opts->prompt_len, vocab);
  // Warmup: touches weights, grows scratch buffers, starts the BLAS threads.
  {
    const std::vector<int32_t> warm(prompt.begin(),
                                    prompt.begin() + std::min(opts->prompt_len, 64));
    absl::StatusOr<RunTimes> w = RunOnce(m, warm, std::min(opts->decode_steps, 4), nullptr);
    if (!w.ok()) return Fail(w.status());
    w = RunOnce(m, prompt, std::min(opts->decode_steps, 4), nullptr);
    if (!w.ok()) return Fail(w.status());
  }
  std::vector<double> prefill, decode;
  std::vector<int32_t> generated;
  for (int r = 0; r < opts->repeats; ++r) {
    absl::StatusOr<RunTimes> t = RunOnce(m, prompt, opts->decode_steps, timer);
    if (!t.ok()) return Fail(t.status());
    prefill.push_back(t->prefill_s);
    decode.push_back(t->decode_s);
    generated = std::move(t->generated);
  }
  const double p_med = Median(prefill);
  const double p_best = *std::min_element(prefill.begin(), prefill.end());
  const double d_med = Median(decode);
  const double d_best = *std::min_element(decode.begin(), decode.end());
  const int n = opts->decode_steps;
  const double p_tps = opts->prompt_len / p_med;
  const double p_tps_best = opts->prompt_len / p_best;
  const double d_tps = n > 0 ? n / d_med : 0.0;
  const double d_tps_best = n > 0 ? n / d_best : 0.0;
  const double d_ms = n > 0 ? 1e3 * d_med / n : 0.0;
  const int threads = openblas_get_num_threads();
  if (timer != nullptr) {
    const double phase_total[2] = {std::accumulate(prefill.begin(), prefill.end(), 0.0),
                                   std::accumulate(decode.begin(), decode.end(), 0.0)};
    const char* phases[2] = {"prefill", "decode"};
    for (int p = 0; p < 2; ++p) {
      const auto& ops_time = timer->buckets[phases[p]];
      std::vector<std::pair<double, std::string>> rows;
      double in_ops = 0;
      for (const auto& [name, b] : ops_time) {
        rows.push_back({b.seconds, absl::StrCat(name, " (", b.calls, " calls)")});
        in_ops += b.seconds;
      }
      std::sort(rows.rbegin(), rows.rend());
      std::fprintf(stderr, "profile %s: %.3fs over %d runs\n", phases[p], phase_total[p],
                   opts->repeats);
      for (const auto& [sec, name] : rows) {
        std::fprintf(stderr, "  %6.1f%%  %8.3fs  %s\n", 100 * sec / phase_total[p], sec,
                     name.c_str());
      }
      std::fprintf(stderr, "  %6.1f%%  %8.3fs  (outside ops: model code, allocation, argmax)\n",
                   100 * (phase_total[p] - in_ops) / phase_total[p], phase_total[p] - in_ops);
    }
  }

  if (opts->json) {
    std::printf(
        "{\"model\":\"%s\",\"prompt_len\":%d,\"decode_steps\":%d,\"threads\":%d,\"repeats\":%d,"
        "\"load_s\":%.3f,\"prefill_s_median\":%.6f,\"prefill_tok_s\":%.3f,"
        "\"prefill_tok_s_best\":%.3f,\"decode_s_median\":%.6f,\"decode_tok_s\":%.3f,"
        "\"decode_tok_s_best\":%.3f,\"decode_ms_per_token\":%.3f,\"openblas_config\":\"%s\",\"generated\":[%s]}\n",
        opts->model_dir.c_str(), opts->prompt_len, n, threads, opts->repeats, load_s, p_med,
        p_tps, p_tps_best, d_med, d_tps, d_tps_best, d_ms, openblas_get_config(),
        absl::StrJoin(generated, ",").c_str());
    return 0;
  }
  std::printf("g4-bench-cpu  model=%s  threads=%d  repeats=%d  load=%.2fs\n",
              opts->model_dir.c_str(), threads, opts->repeats, load_s);
  std::printf("OpenBLAS: %s\n", openblas_get_config());
  std::printf("%-28s %12s %12s %12s\n", "metric", "median", "best", "ms/token");
  std::printf("%-28s %12.1f %12.1f %12.3f\n",
              absl::StrCat("prefill ", opts->prompt_len, " tok/s").c_str(), p_tps, p_tps_best,
              1e3 * p_med / opts->prompt_len);
  std::printf("%-28s %12.1f %12.1f %12.3f\n", absl::StrCat("decode ", n, " tok/s").c_str(), d_tps,
              d_tps_best, d_ms);
  return 0;
}
