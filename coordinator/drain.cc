#include "coordinator/drain.h"

#include <time.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace g4 {

DrainResult WaitForDrain(const GenerationService& generation, const sigset_t& signals,
                         absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    // Short waits, so that a second signal is noticed promptly.
    const absl::Time step = std::min(deadline, absl::Now() + absl::Milliseconds(100));
    if (generation.WaitForNoRequests(step)) return DrainResult::kDrained;
    const timespec zero = {0, 0};
    if (sigtimedwait(&signals, nullptr, &zero) > 0) return DrainResult::kInterrupted;
    if (absl::Now() >= deadline) return DrainResult::kTimedOut;
  }
}

std::string DescribeDrain(DrainResult result, const GenerationService& generation) {
  switch (result) {
    case DrainResult::kDrained:
      return "drained: no request in flight; shutting down";
    case DrainResult::kTimedOut:
      return absl::StrCat("drain timeout: ", generation.InFlightRequests(),
                          " requests still in flight get UNAVAILABLE; shutting down");
    case DrainResult::kInterrupted:
      return absl::StrCat("second signal: ", generation.InFlightRequests(),
                          " requests still in flight get UNAVAILABLE; shutting down");
  }
  return "shutting down";
}

}  // namespace g4
