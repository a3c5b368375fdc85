// Defaults from a checkpoint's generation_config.json (stop tokens, sampling defaults).
#ifndef G4SERVE_COMMON_GENERATION_CONFIG_H_
#define G4SERVE_COMMON_GENERATION_CONFIG_H_

#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace g4 {

struct GenerationConfig {
  // Gemma 4 stops on <eos>, <turn|> and <|tool_response> (gemma4-text.md §5.3).
  std::vector<int> eos_token_ids = {1, 106, 50};
  int bos_token_id = 2;
  int pad_token_id = 0;
  bool do_sample = false;
  std::optional<double> temperature;
  std::optional<int> top_k;
  std::optional<double> top_p;
};

// Parses generation_config.json text; keys that are absent keep the defaults above.
absl::StatusOr<GenerationConfig> ParseGenerationConfig(
    absl::string_view json_text, absl::string_view source = "generation_config.json");

}  // namespace g4

#endif  // G4SERVE_COMMON_GENERATION_CONFIG_H_
