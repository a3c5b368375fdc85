// Drives a g4-load run: builds the requests, releases them on the Poisson schedule (bounded by
// --concurrency) onto a thread pool that grows to the number in flight, and collects results.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_RUNNER_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_RUNNER_H_

#include <vector>

#include "tools/load_generator/load_client.h"
#include "tools/load_generator/load_options.h"
#include "tools/load_generator/request_result.h"

namespace g4::load {

// The requests of a run: random token-id prompts of prompt_len ids uniform in
// [min_token_id, vocab) (seeded), or options.prompt_text for every request, or request i gets
// options.prompts[i % size] (--prompt-file).
std::vector<RequestSpec> MakeRequests(const LoadOptions& options);

struct RunOutcome {
  std::vector<RequestResult> results;  // by request index
  double duration_s = 0;               // first send to last completion
};

RunOutcome RunLoad(const LoadOptions& options, LoadClient& client);

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_RUNNER_H_
