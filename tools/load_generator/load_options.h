// Command line of g4-load, the serving load generator (see docs/performance.md, "Serving load
// generator").
#ifndef G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_OPTIONS_H_
#define G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_OPTIONS_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "tools/prompt_input/prompt_input.h"

namespace g4::load {

enum class Backend { kGrpc, kHttp };

struct LoadOptions {
  Backend backend = Backend::kGrpc;
  std::string server;            // HOST:PORT
  std::string model;             // required for http; optional for grpc
  int num_requests = 100;
  double request_rate = std::numeric_limits<double>::infinity();  // requests/s; inf: all at 0
  int prompt_len = 128;          // random token-id prompts of this length
  int output_len = 128;          // max_tokens, with ignore_eos
  int vocab = 262144;            // random ids are uniform in [min_token_id, vocab)
  int min_token_id = 3;
  std::optional<std::string> prompt_text;  // --prompt: a fixed text prompt instead of ids
  // --prompt-file: JSON Lines of prompts (text or id arrays; tools/prompt_input); request i sends
  // prompts[i % size]. Read by main (ReadPromptsFile) into `prompts`.
  std::string prompt_file;
  std::vector<Prompt> prompts;
  uint64_t seed = 0;
  int concurrency = 0;           // max requests in flight; 0: unlimited
  double temperature = 0.0;      // greedy by default
  bool ignore_eos = true;
  absl::Duration timeout = absl::Seconds(600);  // per request
  std::string json_path;         // empty: no JSON
  // gRPC request ids are <prefix><index>; runs against one server at once need distinct ones.
  std::string request_id_prefix = "g4-load-";
  bool quiet = false;            // no table on stdout
  // --sweep-rates R1,R2,...: one run per rate (each otherwise as configured); a table of
  // latency against achieved throughput, and with --svg FILE that curve as an SVG image.
  std::vector<double> sweep_rates;
  std::string svg_path;
  bool help = false;             // --help / -h: nothing else was checked
};

// Parses argv[1..] (common/flags/flag_set.h). Errors name the flag.
absl::StatusOr<LoadOptions> ParseLoadOptions(absl::Span<const char* const> args);

// The --help text: every flag with its meaning and default.
std::string LoadUsage();

}  // namespace g4::load

#endif  // G4SERVE_TOOLS_LOAD_GENERATOR_LOAD_OPTIONS_H_
