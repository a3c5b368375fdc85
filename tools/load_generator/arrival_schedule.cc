#include "tools/load_generator/arrival_schedule.h"

#include <cmath>
#include <random>

namespace g4::load {

std::vector<double> PoissonArrivalOffsets(int n, double rate, uint64_t seed) {
  std::vector<double> offsets(n > 0 ? n : 0, 0.0);
  if (n <= 0 || std::isinf(rate)) return offsets;
  // std::exponential_distribution is implementation-defined; invert the CDF of a uniform from
  // the (fully specified) mt19937_64 so the schedule is reproducible across standard libraries.
  std::mt19937_64 rng(seed);
  double t = 0.0;
  for (int i = 1; i < n; ++i) {
    // u in (0, 1]: 53 random bits, never 0 so log(u) is finite.
    const double u = (static_cast<double>(rng() >> 11) + 1.0) * 0x1.0p-53;
    t += -std::log(u) / rate;
    offsets[i] = t;
  }
  return offsets;
}

}  // namespace g4::load
