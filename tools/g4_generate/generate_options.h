// Command line of g4-generate (a contract: see README.md and docs/cli.md).
#ifndef G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_
#define G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace g4 {

struct GenerateOptions {
  std::string model_dir;
  std::vector<int32_t> prompt_tokens;
  int max_new_tokens = 0;
  std::string logits_out;  // empty: none
  bool ignore_eos = false;
  int threads = 0;         // 0: the BLAS default
};

// Parses argv[1..]. Errors name the flag and what is wrong.
absl::StatusOr<GenerateOptions> ParseGenerateOptions(absl::Span<const char* const> args);

extern const char kGenerateUsage[];

}  // namespace g4

#endif  // G4SERVE_TOOLS_G4_GENERATE_GENERATE_OPTIONS_H_
