#include "tools/load_generator/latency_curve_svg.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace g4::load {
namespace {

constexpr double kWidth = 900, kHeight = 420;
constexpr double kChartWidth = 360, kChartHeight = 260, kTop = 60, kLeft = 70, kGap = 90;

// The smallest 1/2/2.5/5 x 10^k at or above v (v > 0), for round axis ends.
double NiceCeil(double v) {
  if (!(v > 0)) return 1;
  const double e = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (v <= m * e * (1 + 1e-9)) return m * e;
  }
  return 10 * e;
}

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

struct Series {
  std::string name;
  std::string color;
  std::string dash;  // stroke-dasharray; empty: solid
  std::function<double(const Report&)> value;
};

// One chart at x offset `x0`: the series against output tokens/s.
void Chart(std::string& out, double x0, const std::string& title,
           const std::vector<SweepPoint>& points, const std::vector<Series>& series) {
  double xmax = 0, ymax = 0;
  for (const SweepPoint& p : points) {
    xmax = std::max(xmax, p.report.output_throughput);
    for (const Series& s : series) ymax = std::max(ymax, s.value(p.report));
  }
  xmax = NiceCeil(xmax);
  ymax = NiceCeil(ymax);
  auto sx = [&](double v) { return x0 + v / xmax * kChartWidth; };
  auto sy = [&](double v) { return kTop + kChartHeight - v / ymax * kChartHeight; };
  absl::StrAppendFormat(&out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" font-weight=\"bold\">%s</text>\n",
                        x0, kTop - 12, Escape(title));
  for (int i = 0; i <= 4; ++i) {
    const double yv = ymax * i / 4, xv = xmax * i / 4;
    absl::StrAppendFormat(&out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e0e0e0\"/>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n"
                          "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n",
                          x0, sy(yv), x0 + kChartWidth, sy(yv), x0 - 6, sy(yv) + 4, yv, sx(xv),
                          kTop + kChartHeight + 16, xv);
  }
  absl::StrAppendFormat(&out,
                        "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                        "stroke=\"#888\"/>\n"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">achieved output tokens/s</text>\n"
                        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f "
                        "%.1f)\">ms</text>\n",
                        x0, kTop, kChartWidth, kChartHeight, x0 + kChartWidth / 2,
                        kTop + kChartHeight + 34, x0 - 48, kTop + kChartHeight / 2, x0 - 48,
                        kTop + kChartHeight / 2);
  for (size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    std::string path;
    for (const SweepPoint& p : points) {
      absl::StrAppendFormat(&path, "%s%.1f,%.1f", path.empty() ? "M" : " L",
                            sx(p.report.output_throughput), sy(s.value(p.report)));
    }
    absl::StrAppendFormat(&out,
                          "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n", path,
                          s.color, s.dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", s.dash, "\""));
    for (const SweepPoint& p : points) {
      absl::StrAppendFormat(&out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            sx(p.report.output_throughput), sy(s.value(p.report)), s.color);
    }
    const double ly = kTop + kChartHeight + 52 + 15 * static_cast<double>(k);
    absl::StrAppendFormat(&out,
                          "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                          "stroke-width=\"2\"%s/>\n<text x=\"%.1f\" y=\"%.1f\">%s</text>\n",
                          x0, ly - 4, x0 + 24, ly - 4, s.color,
                          s.dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", s.dash, "\""),
                          x0 + 30, ly, Escape(s.name));
  }
}

}  // namespace

std::string LatencyCurveSvg(const std::vector<SweepPoint>& points, const std::string& title) {
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"%g\" height=\"%g\" "
      "fill=\"#ffffff\"/>\n<text x=\"%g\" y=\"24\" font-size=\"14\">%s</text>\n",
      kWidth, kHeight + 40, kWidth, kHeight + 40, kLeft, Escape(title));
  std::vector<SweepPoint> sorted = points;
  std::sort(sorted.begin(), sorted.end(), [](const SweepPoint& a, const SweepPoint& b) {
    return a.report.output_throughput < b.report.output_throughput;
  });
  Chart(out, kLeft, "Time to first token", sorted,
        {{"TTFT p50", "#1f77b4", "", [](const Report& r) { return r.ttft_ms.median; }},
         {"TTFT p99", "#1f77b4", "6,4", [](const Report& r) { return r.ttft_ms.p99; }}});
  Chart(out, kLeft + kChartWidth + kGap, "Inter-token latency", sorted,
        {{"ITL p50", "#d62728", "", [](const Report& r) { return r.itl_ms.median; }},
         {"ITL p99", "#d62728", "6,4", [](const Report& r) { return r.itl_ms.p99; }}});
  // The offered rates, for reading the points.
  std::string rates;
  for (const SweepPoint& p : sorted) {
    absl::StrAppend(&rates, rates.empty() ? "" : ", ",
                    std::isinf(p.request_rate) ? std::string("inf")
                                               : absl::StrFormat("%g", p.request_rate),
                    absl::StrFormat(" req/s → %.0f tok/s", p.report.output_throughput));
  }
  absl::StrAppendFormat(&out, "<text x=\"%g\" y=\"%g\">points: %s</text>\n</svg>\n", kLeft,
                        kHeight + 30, Escape(rates));
  return out;
}

}  // namespace g4::load
