// The coordinator's graceful drain on SIGTERM (docs/coordinator.md, "Drain"): readiness fails
// and new requests get UNAVAILABLE (GenerationService::BeginDrain), then the requests in flight
// get up to --drain-timeout to finish before the servers stop.
#ifndef G4SERVE_COORDINATOR_DRAIN_H_
#define G4SERVE_COORDINATOR_DRAIN_H_

#include <signal.h>

#include <string>

#include "absl/time/time.h"
#include "coordinator/api/generation.h"

namespace g4 {

enum class DrainResult {
  kDrained,      // no request left in flight
  kTimedOut,     // the drain timeout passed first
  kInterrupted,  // another signal arrived: stop at once
};

// Waits until `generation` has no request in flight, `timeout` passes, or one of `signals`
// (blocked in every thread, as for sigwait) arrives.
DrainResult WaitForDrain(const GenerationService& generation, const sigset_t& signals,
                         absl::Duration timeout);

// One log line: how the drain ended and what is left.
std::string DescribeDrain(DrainResult result, const GenerationService& generation);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_DRAIN_H_
