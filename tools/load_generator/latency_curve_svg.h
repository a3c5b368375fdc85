// The latency-versus-load curve of a g4-load rate sweep (--sweep-rates, --svg) as an SVG image:
// TTFT and ITL percentiles (p50, p99) in milliseconds against the achieved output tokens/s, one
// point per request rate, two side-by-side charts. Written directly (no plotting library).
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_LATENCY_CURVE_SVG_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_LATENCY_CURVE_SVG_H_

#include <string>
#include <vector>

#include "tools/load_generator/stats.h"

namespace g4::load {

// One rate of a sweep and what it achieved.
struct SweepPoint {
  double request_rate = 0;  // offered requests/s (+inf: all at once)
  Report report;
};

// The SVG document; `title` heads it (e.g. the server and the request shape).
std::string LatencyCurveSvg(const std::vector<SweepPoint>& points, const std::string& title);

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_LATENCY_CURVE_SVG_H_
