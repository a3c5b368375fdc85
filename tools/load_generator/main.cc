// g4-load: a serving load generator for g4serve (gRPC g4serve.v1.Inference/Generate or the
// OpenAI-compatible POST /v1/completions), after vLLM's benchmark_serving: Poisson arrivals,
// fixed prompt/output lengths, a throughput and TTFT/TPOT/ITL/E2E latency report.
//
//   g4-load --server HOST:PORT [--backend grpc|http] [--model NAME] [--num-requests N]
//           [--request-rate R|inf] [--prompt-len L] [--output-len O] [--vocab V] [--seed S]
//           [--concurrency C] [--json FILE] ...   (g4-load --help)
//
// Exit: 0 all requests succeeded, 1 some failed (the report is still printed and written),
// 2 bad flags or an unwritable --json file.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/flags/flag_set.h"
#include "tools/load_generator/latency_curve_svg.h"
#include "tools/load_generator/load_client.h"
#include "tools/load_generator/load_options.h"
#include "tools/load_generator/load_runner.h"
#include "tools/load_generator/stats.h"

namespace g4::load {
namespace {

// --sweep-rates: one run per rate; a table (and --json, --svg) of latency against throughput.
int Sweep(const LoadOptions& base, LoadClient& client) {
  std::vector<SweepPoint> points;
  int failed = 0;
  std::string table = absl::StrFormat("%10s %10s %12s %10s %10s %10s %10s %7s\n", "rate",
                                      "req/s", "out tok/s", "TTFT p50", "TTFT p99", "ITL p50",
                                      "ITL p99", "failed");
  for (size_t i = 0; i < base.sweep_rates.size(); ++i) {
    LoadOptions o = base;
    o.request_rate = base.sweep_rates[i];
    o.request_id_prefix = absl::StrCat(base.request_id_prefix, "r", i, "-");
    const RunOutcome outcome = RunLoad(o, client);
    SweepPoint p{o.request_rate, Aggregate(outcome.results, outcome.duration_s)};
    failed += p.report.failed;
    absl::StrAppendFormat(&table, "%10s %10.2f %12.1f %10.1f %10.1f %10.1f %10.1f %7d\n",
                          std::isinf(p.request_rate) ? "inf" : absl::StrFormat("%g", p.request_rate),
                          p.report.request_throughput, p.report.output_throughput,
                          p.report.ttft_ms.median, p.report.ttft_ms.p99, p.report.itl_ms.median,
                          p.report.itl_ms.p99, p.report.failed);
    std::fprintf(stderr, "g4-load: rate %s done: %.1f output tok/s\n",
                 std::isinf(p.request_rate) ? "inf" : absl::StrCat(p.request_rate).c_str(),
                 p.report.output_throughput);
    points.push_back(std::move(p));
  }
  if (!base.quiet) std::fputs(table.c_str(), stdout);
  if (!base.json_path.empty()) {
    nlohmann::json sweep = nlohmann::json::array();
    for (const SweepPoint& p : points) {
      nlohmann::json j = ReportToJson(p.report, {});
      j["request_rate"] = std::isinf(p.request_rate) ? nlohmann::json("inf")
                                                     : nlohmann::json(p.request_rate);
      sweep.push_back(std::move(j));
    }
    std::ofstream out(base.json_path);
    out << nlohmann::json{{"sweep", sweep}}.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "g4-load: cannot write %s\n", base.json_path.c_str());
      return 2;
    }
  }
  if (!base.svg_path.empty()) {
    std::ofstream out(base.svg_path);
    out << LatencyCurveSvg(
        points, absl::StrFormat("g4-load sweep: %d requests per rate, %s prompts, %d output "
                                "tokens (%s)",
                                base.num_requests,
                                base.prompt_text || !base.prompts.empty()
                                    ? std::string("given")
                                    : absl::StrCat(base.prompt_len, "-token"),
                                base.output_len, base.server));
    if (!out) {
      std::fprintf(stderr, "g4-load: cannot write %s\n", base.svg_path.c_str());
      return 2;
    }
  }
  return failed > 0 ? 1 : 0;
}

int Main(int argc, char** argv) {
  auto options = ParseLoadOptions(absl::MakeConstSpan(argv + 1, argc - 1));
  if (!options.ok()) return FlagError("g4-load", options.status());
  if (options->help) return PrintUsage(LoadUsage());
  if (!options->prompt_file.empty()) {
    absl::StatusOr<std::vector<Prompt>> prompts = ReadPromptsFile(options->prompt_file);
    if (!prompts.ok()) {
      return FlagError("g4-load", absl::InvalidArgumentError(absl::StrCat(
                                      "--prompt-file: ", prompts.status().message())));
    }
    options->prompts = *std::move(prompts);
  }
  auto client = MakeLoadClient(*options);
  if (!client.ok()) {
    std::fprintf(stderr, "g4-load: %s\n", std::string(client.status().message()).c_str());
    return 2;
  }
  const LoadOptions& o = *options;
  std::fprintf(stderr,
               "g4-load: %s %s, %d requests at %s req/s (concurrency %s), prompt %s, output %d\n",
               o.backend == Backend::kGrpc ? "grpc" : "http", o.server.c_str(), o.num_requests,
               std::isinf(o.request_rate) ? "inf" : absl::StrCat(o.request_rate).c_str(),
               o.concurrency > 0 ? absl::StrCat(o.concurrency).c_str() : "unlimited",
               o.prompt_text ? "text"
               : !o.prompts.empty()
                   ? absl::StrCat(o.prompts.size(), " from ", o.prompt_file).c_str()
                   : absl::StrCat(o.prompt_len, " ids").c_str(),
               o.output_len);
  if (!o.sweep_rates.empty()) return Sweep(o, **client);
  const RunOutcome outcome = RunLoad(o, **client);
  const Report report = Aggregate(outcome.results, outcome.duration_s);
  if (!o.quiet) std::fputs(FormatReport(report).c_str(), stdout);
  if (!o.json_path.empty()) {
    nlohmann::json j = ReportToJson(report, outcome.results);
    j["config"] = {{"backend", o.backend == Backend::kGrpc ? "grpc" : "http"},
                   {"server", o.server},
                   {"model", o.model},
                   {"num_requests", o.num_requests},
                   {"request_rate", std::isinf(o.request_rate) ? nlohmann::json("inf")
                                                               : nlohmann::json(o.request_rate)},
                   {"concurrency", o.concurrency},
                   {"prompt_len", o.prompt_text || !o.prompts.empty() ? 0 : o.prompt_len},
                   {"prompt_file", o.prompt_file},
                   {"output_len", o.output_len},
                   {"seed", o.seed},
                   {"temperature", o.temperature},
                   {"ignore_eos", o.ignore_eos}};
    std::ofstream out(o.json_path);
    out << j.dump(2) << "\n";
    if (!out) {
      std::fprintf(stderr, "g4-load: cannot write %s\n", o.json_path.c_str());
      return 2;
    }
  }
  return report.failed > 0 ? 1 : 0;
}

}  // namespace
}  // namespace g4::load

int main(int argc, char** argv) { return g4::load::Main(argc, argv); }
