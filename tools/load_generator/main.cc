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
#include "common/flags/flag_set.h"
#include "tools/load_generator/load_client.h"
#include "tools/load_generator/load_options.h"
#include "tools/load_generator/load_runner.h"
#include "tools/load_generator/stats.h"

namespace g4::load {
namespace {

int Main(int argc, char** argv) {
  auto options = ParseLoadOptions(absl::MakeConstSpan(argv + 1, argc - 1));
  if (!options.ok()) return FlagError("g4-load", options.status());
  if (options->help) return PrintUsage(LoadUsage());
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
               o.prompt_text ? "text" : absl::StrCat(o.prompt_len, " ids").c_str(), o.output_len);
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
                   {"prompt_len", o.prompt_text ? 0 : o.prompt_len},
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
