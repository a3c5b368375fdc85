#include "tools/load_generator/load_options.h"

#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace g4::load {

const char kLoadUsage[] =
    "usage: g4-load --server HOST:PORT [--backend grpc|http] [--model NAME] [--num-requests N] "
    "[--request-rate R|inf] [--prompt-len L] [--output-len O] [--vocab V] [--min-token-id I] "
    "[--prompt TEXT | --prompt-file FILE] [--request-id-prefix P] [--sweep-rates R,R,... [--svg FILE]] [--seed S] [--concurrency C] [--temperature T] [--no-ignore-eos] "
    "[--timeout DURATION] [--json FILE] [--quiet]";

namespace {

absl::Status BadValue(absl::string_view flag, absl::string_view value, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", value, "\" is not ", what));
}

}  // namespace

absl::StatusOr<LoadOptions> ParseLoadOptions(absl::Span<const char* const> args) {
  LoadOptions o;
  o.request_rate = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < args.size(); ++i) {
    const size_t flag_index = i;
    absl::string_view arg = args[i];
    if (arg == "--quiet") {
      o.quiet = true;
      continue;
    }
    if (arg == "--no-ignore-eos") {
      o.ignore_eos = false;
      continue;
    }
    absl::string_view value;
    if (const size_t eq = arg.find('='); arg.substr(0, 2) == "--" && eq != absl::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg.substr(0, 2) != "--") {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    } else {
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      value = args[++i];
    }
    auto int_flag = [&](int* out, int min) -> absl::Status {
      if (!absl::SimpleAtoi(value, out)) return BadValue(arg, value, "an integer");
      if (*out < min) return BadValue(arg, value, absl::StrCat("an integer >= ", min));
      return absl::OkStatus();
    };
    absl::Status st;
    if (arg == "--backend") {
      if (value == "grpc") {
        o.backend = Backend::kGrpc;
      } else if (value == "http") {
        o.backend = Backend::kHttp;
      } else {
        st = BadValue(arg, value, "grpc or http");
      }
    } else if (arg == "--server") {
      o.server = std::string(value);
    } else if (arg == "--model") {
      o.model = std::string(value);
    } else if (arg == "--num-requests") {
      st = int_flag(&o.num_requests, 1);
    } else if (arg == "--request-rate") {
      const std::string lower = absl::AsciiStrToLower(value);
      if (lower == "inf" || lower == "infinity") {
        o.request_rate = std::numeric_limits<double>::infinity();
      } else if (!absl::SimpleAtod(value, &o.request_rate) || !(o.request_rate > 0) ||
                 std::isnan(o.request_rate)) {
        st = BadValue(arg, value, "a positive rate or inf");
      }
    } else if (arg == "--prompt-len") {
      st = int_flag(&o.prompt_len, 1);
    } else if (arg == "--output-len") {
      st = int_flag(&o.output_len, 1);
    } else if (arg == "--vocab") {
      st = int_flag(&o.vocab, 1);
    } else if (arg == "--min-token-id") {
      st = int_flag(&o.min_token_id, 0);
    } else if (arg == "--prompt") {
      o.prompt_text = std::string(value);
    } else if (arg == "--sweep-rates") {
      for (absl::string_view piece : absl::StrSplit(value, ',')) {
        const std::string lower = absl::AsciiStrToLower(piece);
        double r = 0;
        if (lower == "inf" || lower == "infinity") {
          r = std::numeric_limits<double>::infinity();
        } else if (!absl::SimpleAtod(piece, &r) || !(r > 0) || std::isnan(r)) {
          st = BadValue(arg, piece, "a list of positive rates (or inf)");
          break;
        }
        o.sweep_rates.push_back(r);
      }
    } else if (arg == "--svg") {
      o.svg_path = std::string(value);
    } else if (arg == "--request-id-prefix") {
      o.request_id_prefix = std::string(value);
    } else if (arg == "--prompt-file") {
      o.prompt_file = std::string(value);
    } else if (arg == "--seed") {
      if (!absl::SimpleAtoi(value, &o.seed)) st = BadValue(arg, value, "an unsigned integer");
    } else if (arg == "--concurrency") {
      st = int_flag(&o.concurrency, 0);
    } else if (arg == "--temperature") {
      if (!absl::SimpleAtod(value, &o.temperature) || o.temperature < 0) {
        st = BadValue(arg, value, "a number >= 0");
      }
    } else if (arg == "--timeout") {
      if (!absl::ParseDuration(value, &o.timeout) || o.timeout <= absl::ZeroDuration()) {
        st = BadValue(arg, value, "a positive duration (e.g. 30s)");
      }
    } else if (arg == "--json") {
      o.json_path = std::string(value);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", args[flag_index], "\""));
    }
    if (!st.ok()) return st;
  }
  if (o.server.empty()) return absl::InvalidArgumentError("--server HOST:PORT is required");
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
