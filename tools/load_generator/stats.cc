#include "tools/load_generator/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace g4::load {

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0.0;
  std::sort(values.begin(), values.end());
  p = std::clamp(p, 0.0, 100.0);
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

Distribution Summarize(absl::Span<const double> values) {
  Distribution d;
  d.count = values.size();
  if (values.empty()) return d;
  std::vector<double> v(values.begin(), values.end());
  d.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - d.mean) * (x - d.mean);
  d.stddev = std::sqrt(sq / static_cast<double>(v.size()));
  std::sort(v.begin(), v.end());
  d.min = v.front();
  d.max = v.back();
  d.median = Percentile(v, 50);
  d.p90 = Percentile(v, 90);
  d.p99 = Percentile(v, 99);
  return d;
}

Report Aggregate(absl::Span<const RequestResult> results, double duration_s) {
  Report r;
  r.duration_s = duration_s;
  std::vector<double> ttft, tpot, itl, e2e;
  int64_t chunks = 0;
  for (const RequestResult& res : results) {
    if (!res.success) {
      ++r.failed;
      if (r.first_error.empty()) r.first_error = res.error;
      continue;
    }
    ++r.successful;
    r.total_input_tokens += res.prompt_tokens;
    r.total_output_tokens += res.output_tokens;
    chunks += res.chunks;
    ttft.push_back(res.ttft_s * 1e3);
    e2e.push_back(res.e2e_s * 1e3);
    if (res.output_tokens > 1) {
      tpot.push_back((res.e2e_s - res.ttft_s) * 1e3 / (res.output_tokens - 1));
    }
    for (double gap : res.itl_s) itl.push_back(gap * 1e3);
  }
  if (duration_s > 0) {
    r.request_throughput = r.successful / duration_s;
    r.output_throughput = static_cast<double>(r.total_output_tokens) / duration_s;
    r.total_token_throughput =
        static_cast<double>(r.total_input_tokens + r.total_output_tokens) / duration_s;
  }
  if (chunks > 0) r.mean_tokens_per_chunk = static_cast<double>(r.total_output_tokens) / chunks;
  r.ttft_ms = Summarize(ttft);
  r.tpot_ms = Summarize(tpot);
  r.itl_ms = Summarize(itl);
  r.e2e_ms = Summarize(e2e);
  return r;
}

namespace {

std::string Rule(absl::string_view title, char fill) {
  const int width = 50;
  const int pad = width - static_cast<int>(title.size());
  if (pad <= 0) return std::string(title);
  return absl::StrCat(std::string(pad / 2, fill), title, std::string(pad - pad / 2, fill));
}

void Line(std::string* out, absl::string_view label, double value) {
  absl::StrAppendFormat(out, "%-40s %.2f\n", label, value);
}
void Line(std::string* out, absl::string_view label, int64_t value) {
  absl::StrAppendFormat(out, "%-40s %d\n", label, value);
}

void Section(std::string* out, absl::string_view title, absl::string_view name,
             const Distribution& d) {
  absl::StrAppend(out, Rule(title, '-'), "\n");
  Line(out, absl::StrCat("Mean ", name, " (ms):"), d.mean);
  Line(out, absl::StrCat("Median ", name, " (ms):"), d.median);
  Line(out, absl::StrCat("P90 ", name, " (ms):"), d.p90);
  Line(out, absl::StrCat("P99 ", name, " (ms):"), d.p99);
}

nlohmann::json DistributionJson(const Distribution& d) {
  return {{"count", d.count}, {"mean", d.mean}, {"std", d.stddev}, {"median", d.median},
          {"p90", d.p90},     {"p99", d.p99},   {"min", d.min},    {"max", d.max}};
}

}  // namespace

std::string FormatReport(const Report& r, absl::string_view title) {
  std::string out;
  absl::StrAppend(&out, Rule(absl::StrCat(" ", title, " "), '='), "\n");
  Line(&out, "Successful requests:", int64_t{r.successful});
  Line(&out, "Failed requests:", int64_t{r.failed});
  Line(&out, "Benchmark duration (s):", r.duration_s);
  Line(&out, "Total input tokens:", r.total_input_tokens);
  Line(&out, "Total generated tokens:", r.total_output_tokens);
  Line(&out, "Request throughput (req/s):", r.request_throughput);
  Line(&out, "Output token throughput (tok/s):", r.output_throughput);
  Line(&out, "Total Token throughput (tok/s):", r.total_token_throughput);
  Line(&out, "Mean tokens per chunk:", r.mean_tokens_per_chunk);
  Section(&out, "Time to First Token", "TTFT", r.ttft_ms);
  Section(&out, "Time per Output Token (excl. 1st token)", "TPOT", r.tpot_ms);
  Section(&out, "Inter-token Latency", "ITL", r.itl_ms);
  Section(&out, "End-to-end Latency", "E2EL", r.e2e_ms);
  absl::StrAppend(&out, std::string(50, '='), "\n");
  if (r.failed > 0) absl::StrAppend(&out, "First error: ", r.first_error, "\n");
  return out;
}

nlohmann::json ReportToJson(const Report& r, absl::Span<const RequestResult> results) {
  nlohmann::json j = {
      {"completed", r.successful},
      {"failed", r.failed},
      {"duration_s", r.duration_s},
      {"total_input_tokens", r.total_input_tokens},
      {"total_output_tokens", r.total_output_tokens},
      {"request_throughput", r.request_throughput},
      {"output_throughput", r.output_throughput},
      {"total_token_throughput", r.total_token_throughput},
      {"mean_tokens_per_chunk", r.mean_tokens_per_chunk},
      {"ttft_ms", DistributionJson(r.ttft_ms)},
      {"tpot_ms", DistributionJson(r.tpot_ms)},
      {"itl_ms", DistributionJson(r.itl_ms)},
      {"e2el_ms", DistributionJson(r.e2e_ms)},
  };
  nlohmann::json input_lens = nlohmann::json::array(), output_lens = nlohmann::json::array(),
                 starts = nlohmann::json::array(), ttfts = nlohmann::json::array(),
                 e2els = nlohmann::json::array(), itls = nlohmann::json::array(),
                 errors = nlohmann::json::array();
  for (const RequestResult& res : results) {
    input_lens.push_back(res.prompt_tokens);
    output_lens.push_back(res.output_tokens);
    starts.push_back(res.start_s);
    ttfts.push_back(res.ttft_s);
    e2els.push_back(res.e2e_s);
    itls.push_back(res.itl_s);
    errors.push_back(res.error);
  }
  j["input_lens"] = std::move(input_lens);
  j["output_lens"] = std::move(output_lens);
  j["start_s"] = std::move(starts);
  j["ttfts_s"] = std::move(ttfts);
  j["e2els_s"] = std::move(e2els);
  j["itls_s"] = std::move(itls);
  j["errors"] = std::move(errors);
  return j;
}

}  // namespace g4::load
