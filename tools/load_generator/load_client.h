// The interface g4-load's backends (gRPC, OpenAI-compatible HTTP) implement.
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_CLIENT_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_CLIENT_H_

#include <memory>

#include "absl/status/statusor.h"
#include "tools/load_generator/load_options.h"
#include "tools/load_generator/request_result.h"

namespace g4::load {

class LoadClient {
 public:
  virtual ~LoadClient() = default;
  // Sends one streaming generation request and blocks until it ends. Thread-safe: the runner
  // calls it from many threads at once. Never throws; failures come back as !success with the
  // error. Times in the result are relative to `sent` (TTFT, ITL, e2e); start_s is the caller's.
  virtual RequestResult Send(const RequestSpec& spec) = 0;
};

// The client for options.backend, connected (lazily) to options.server.
absl::StatusOr<std::unique_ptr<LoadClient>> MakeLoadClient(const LoadOptions& options);

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_CLIENT_H_
