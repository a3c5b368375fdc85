// Request arrival times for g4-load: a Poisson process (exponential inter-arrival gaps) drawn
// from a seeded generator, like vLLM's benchmark_serving with burstiness 1.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_ARRIVAL_SCHEDULE_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_ARRIVAL_SCHEDULE_H_

#include <cstdint>
#include <vector>

namespace g4::load {

// Offsets in seconds from the start of the run, non-decreasing, one per request. The first
// request is sent at 0; each later gap is Exp(rate). rate = +inf (or <= 0 is rejected by the
// caller) puts every request at 0. Same (n, rate, seed): same schedule on every platform.
std::vector<double> PoissonArrivalOffsets(int n, double rate, uint64_t seed);

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_ARRIVAL_SCHEDULE_H_
