// Aggregates g4-load request results into the benchmark report (vLLM benchmark_serving's
// metrics) and renders it as a table and as JSON.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_STATS_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "tools/load_generator/request_result.h"

namespace g4::load {

// The p-th percentile (0..100) by linear interpolation between closest ranks (numpy's default
// method). Empty input: 0.
double Percentile(std::vector<double> values, double p);

struct Distribution {
  size_t count = 0;
  double mean = 0, stddev = 0, median = 0, p90 = 0, p99 = 0, min = 0, max = 0;
};

// Population statistics (numpy defaults); all zeros for empty input.
Distribution Summarize(absl::Span<const double> values);

struct Report {
  int successful = 0;
  int failed = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0;
  int64_t total_output_tokens = 0;
  double request_throughput = 0;      // successful requests / s
  double output_throughput = 0;       // output tokens / s
  double total_token_throughput = 0;  // (input + output) tokens / s
  double mean_tokens_per_chunk = 0;
  // In milliseconds, over successful requests. TPOT = (e2e - ttft) / (output_tokens - 1), per
  // request with more than one output token. ITL: every chunk gap of every request.
  Distribution ttft_ms, tpot_ms, itl_ms, e2e_ms;
  std::string first_error;  // for diagnosis when failed > 0
};

Report Aggregate(absl::Span<const RequestResult> results, double duration_s);

// vLLM-style table, e.g. "Successful requests:                     100".
std::string FormatReport(const Report& report, absl::string_view title = "Serving Benchmark Result");

// The report's metrics plus per-request arrays (ttfts, itls, e2els, output_lens, errors).
nlohmann::json ReportToJson(const Report& report, absl::Span<const RequestResult> results);

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_STATS_H_
