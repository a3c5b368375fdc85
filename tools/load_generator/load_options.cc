#include "tools/load_generator/load_options.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/flags/flag_set.h"
#include "common/status_macros.h"

namespace g4::load {

namespace {

constexpr char kProgram[] = "g4-load";
constexpr char kSynopsis[] = "--server HOST:PORT [--backend grpc|http] [flags]";
constexpr char kDescription[] =
    "A serving load generator (after vLLM's benchmark_serving): Poisson arrivals, fixed prompt "
    "and output lengths, a throughput and TTFT/TPOT/ITL/E2E latency report. Exit 0 when every "
    "request succeeded, 1 when some failed, 2 on bad flags. docs/performance.md.";

void DeclareFlags(FlagSet& flags, LoadOptions& o) {
  flags.Add("server", &o.server, "the coordinator's gRPC or HTTP address")
      .Value("HOST:PORT")
      .Required()
      .NonEmpty();
  flags.AddCustom("backend", "grpc|http",
                  "g4serve.v1.Inference/Generate or the OpenAI POST /v1/completions",
                  [&o](absl::string_view v) -> absl::Status {
                    if (v == "grpc") {
                      o.backend = Backend::kGrpc;
                    } else if (v == "http") {
                      o.backend = Backend::kHttp;
                    } else {
                      return absl::InvalidArgumentError(
                          absl::StrCat("expected grpc or http, got \"", v, "\""));
                    }
                    return absl::OkStatus();
                  })
      .Default("grpc");
  flags.Add("model", &o.model, "model id; required with --backend http").Value("NAME");
  flags.Add("num-requests", &o.num_requests, "requests to send").Min(1);
  flags.AddCustom("request-rate", "R|inf",
                  "mean arrivals per second (Poisson); inf sends every request at once",
                  [&o](absl::string_view v) -> absl::Status {
                    const std::string lower = absl::AsciiStrToLower(v);
                    double rate = 0;
                    if (lower == "inf" || lower == "infinity") {
                      o.request_rate = std::numeric_limits<double>::infinity();
                    } else if (absl::SimpleAtod(v, &rate) && rate > 0 && !std::isnan(rate)) {
                      o.request_rate = rate;
                    } else {
                      return absl::InvalidArgumentError(
                          absl::StrCat("expected a positive rate or inf, got \"", v, "\""));
                    }
                    return absl::OkStatus();
                  })
      .Default("inf");
  flags.Add("prompt-len", &o.prompt_len, "random token-id prompts of L tokens").Value("L").Min(1);
  flags.Add("output-len", &o.output_len, "max_tokens of each request").Value("O").Min(1);
  flags.Add("vocab", &o.vocab, "random ids are uniform in [--min-token-id, V)").Value("V").Min(1);
  flags.Add("min-token-id", &o.min_token_id, "the smallest random id").Value("I").Min(0);
  flags.Add("prompt", &o.prompt_text, "a fixed text prompt instead of random ids").Value("TEXT");
  flags.Add("prompt-file", &o.prompt_file,
            "prompts from a JSON Lines file (- for stdin), used in turn: each line a JSON string "
            "(text) or a list of token ids")
      .Value("FILE");
  flags.Add("request-id-prefix", &o.request_id_prefix,
            "request ids are this prefix followed by the request's index")
      .Value("P");
  flags.AddCustom("sweep-rates", "R,R,...",
                  "one run per request rate (each otherwise as configured): a table of latency "
                  "against achieved throughput",
                  [&o](absl::string_view v) -> absl::Status {
                    o.sweep_rates.clear();
                    for (absl::string_view piece : absl::StrSplit(v, ',')) {
                      const std::string lower = absl::AsciiStrToLower(piece);
                      double r = 0;
                      if (lower == "inf" || lower == "infinity") {
                        r = std::numeric_limits<double>::infinity();
                      } else if (!absl::SimpleAtod(piece, &r) || !(r > 0) || std::isnan(r)) {
                        return absl::InvalidArgumentError(absl::StrCat(
                            "expected positive rates (or inf), got \"", piece, "\""));
                      }
                      o.sweep_rates.push_back(r);
                    }
                    return absl::OkStatus();
                  })
      .Default("none");
  flags.Add("svg", &o.svg_path, "with --sweep-rates: draw the latency curve as an SVG image")
      .Value("FILE");
  flags.Add("seed", &o.seed, "seed of the arrivals and the prompts").Value("S");
  flags.Add("concurrency", &o.concurrency, "requests in flight at most; 0 = unlimited")
      .Value("C")
      .Min(0);
  flags.Add("temperature", &o.temperature, "sampling temperature; 0 = greedy")
      .Value("T")
      .RealRange(0.0, std::numeric_limits<double>::infinity());
  flags.AddSwitch("no-ignore-eos", "stop at the model's eos tokens (default: ignore them)",
                  [&o](bool on) { o.ignore_eos = !on; });
  flags.Add("timeout", &o.timeout, "deadline of each request").MinExclusive(absl::ZeroDuration());
  flags.Add("json", &o.json_path, "also write the report and every request as JSON").Value("FILE");
  flags.Add("quiet", &o.quiet, "no table on stdout");
}

constexpr FlagSpec<LoadOptions> kSpec = {kProgram, kSynopsis, kDescription, DeclareFlags};

}  // namespace

std::string LoadUsage() { return kSpec.Usage(); }

absl::StatusOr<LoadOptions> ParseLoadOptions(absl::Span<const char* const> args) {
  LoadOptions o;
  G4_RETURN_IF_ERROR(kSpec.Parse(args, &o));
  if (o.help) return o;
  if (o.backend == Backend::kHttp && o.model.empty()) {
    return absl::InvalidArgumentError("--model is required with --backend http");
  }
  if (!o.svg_path.empty() && o.sweep_rates.empty()) {
    return absl::InvalidArgumentError("--svg: needs --sweep-rates");
  }
  if (o.prompt_text && !o.prompt_file.empty()) {
    return absl::InvalidArgumentError("give only one of --prompt and --prompt-file");
  }
  if (!o.prompt_text && o.prompt_file.empty() && o.min_token_id >= o.vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("--vocab (", o.vocab, ") must exceed --min-token-id (", o.min_token_id, ")"));
  }
  return o;
}

}  // namespace g4::load
