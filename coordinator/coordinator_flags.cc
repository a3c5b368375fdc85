#include "coordinator/coordinator_flags.h"

#include <functional>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

absl::Status ParseInt(const std::string& flag, const std::string& value, int64_t min,
                      int64_t* out) {
  int64_t v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected an integer >= ", min, ", got '", value, "'"));
  }
  *out = v;
  return absl::OkStatus();
}

absl::Status ParseDurationFlag(const std::string& flag, const std::string& value,
                               absl::Duration* out) {
  absl::Duration d;
  // A bare number is seconds.
  double seconds = 0;
  if (absl::SimpleAtod(value, &seconds)) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(value, &d)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": expected a duration like 30s or 500ms, got '", value, "'"));
  }
  if (d <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": must be positive, got '", value, "'"));
  }
  *out = d;
  return absl::OkStatus();
}

}  // namespace

std::string CoordinatorUsage() {
  return R"(usage: g4-coordinator --model DIR [flags]
  --model DIR                    model directory (config.json, generation_config.json,
                                 tokenizer.json, chat_template.jinja); required
  --served-model-name NAME       model id in the API (default: basename of --model)
  --tensor-parallel-size N       ranks (workers) per replica (default 1)
  --expert-parallel-size N       expert-parallel degree for MoE models (default 1)
  --num-replicas N               replicas to form; 0 = as many as registered workers allow (default 0)
  --host HOST                    listen address (default 127.0.0.1)
  --port N                       listen port; 0 = pick a free one (default 0)
  --port-file PATH               write the bound port here once serving
  --http-port N                  OpenAI-compatible HTTP port; 0 = pick a free one,
                                 -1 = no HTTP server (default -1)
  --http-port-file PATH          write the bound HTTP port here once serving
  --max-num-seqs N               engine: running sequences per replica (default: engine's)
  --max-num-batched-tokens N     engine: tokens per step (default: engine's)
  --max-model-len N              maximum context (default: the model's)
  --max-queue N                  engine: waiting requests before RESOURCE_EXHAUSTED
  --block-size N                 engine: KV cache page size in tokens (default: engine's, 16)
  --num-global-pages N           engine: pages of the global KV pool (default: sized for
                                 max-num-seqs sequences)
  --num-sliding-pages N          engine: pages of the sliding-window KV pool (default: likewise)
  --enable-prefix-caching        engine: reuse cached prompt prefixes (the default)
  --no-enable-prefix-caching     engine: no prefix caching
  --batch-invariant              engine: batch-invariant kernels, so that seeded sampling gives
                                 the same tokens under any batching and after a migration
                                 (slower decode; default off)
  --metrics-port N               Prometheus /metrics port; 0 = pick a free one, -1 = off
                                 (default -1)
  --metrics-host HOST            metrics listen address (default: --host)
  --metrics-prefix P             metric name prefix (default g4serve_; vllm: for vLLM's names)
  --metrics-port-file PATH       write the bound metrics port here once serving
  --capacity-typical-tokens N    capacity metrics: also count sequences of N tokens that fit
                                 (default 4096; 0 = only the maximum context)
  --collective-timeout DUR       collective timeout on workers (default 30s)
  --health-interval DUR          worker health-check period (default 1s)
  --health-timeout DUR           worker health-check deadline (default 2s)
  --load-timeout DUR             Worker.Load deadline (default 10m)
  --drain-timeout DUR            on SIGTERM: fail readiness, take no new requests, let those in
                                 flight finish for at most DUR, then exit 0 (default 30s)
  --migration-limit N            times one request may continue on another replica when its
                                 replica fails mid-stream; 0 = never (default 3)
)";
}

absl::StatusOr<CoordinatorFlags> ParseCoordinatorFlags(const std::vector<std::string>& args) {
  CoordinatorFlags f;
  int64_t n = 0;
  using Setter = std::function<absl::Status(const std::string& flag, const std::string& v)>;
  auto int_flag = [&n](auto* field, int64_t min) -> Setter {
    return [field, min, &n](const std::string& flag, const std::string& v) -> absl::Status {
      absl::Status s = ParseInt(flag, v, min, &n);
      if (!s.ok()) return s;
      *field = static_cast<std::remove_pointer_t<decltype(field)>>(n);
      return absl::OkStatus();
    };
  };
  auto string_flag = [](std::string* field) -> Setter {
    return [field](const std::string& flag, const std::string& v) -> absl::Status {
      *field = v;
      return absl::OkStatus();
    };
  };
  auto duration_flag = [](absl::Duration* field) -> Setter {
    return [field](const std::string& flag, const std::string& v) {
      return ParseDurationFlag(flag, v, field);
    };
  };
  const std::map<std::string, Setter> setters = {
      {"model", string_flag(&f.model)},
      {"served-model-name", string_flag(&f.served_model_name)},
      {"tensor-parallel-size", int_flag(&f.tensor_parallel_size, 1)},
      {"expert-parallel-size", int_flag(&f.expert_parallel_size, 1)},
      {"num-replicas", int_flag(&f.num_replicas, 0)},
      {"host", string_flag(&f.host)},
      {"port", int_flag(&f.port, 0)},
      {"port-file", string_flag(&f.port_file)},
      {"http-port", int_flag(&f.http_port, -1)},
      {"http-port-file", string_flag(&f.http_port_file)},
      {"max-num-seqs", int_flag(&f.max_num_seqs, 0)},
      {"max-num-batched-tokens", int_flag(&f.max_num_batched_tokens, 0)},
      {"max-model-len", int_flag(&f.max_model_len, 0)},
      {"max-queue", int_flag(&f.max_queue, 0)},
      {"block-size", int_flag(&f.block_size, 0)},
      {"num-global-pages", int_flag(&f.num_global_pages, 0)},
      {"num-sliding-pages", int_flag(&f.num_sliding_pages, 0)},
      {"metrics-port", int_flag(&f.metrics_port, -1)},
      {"metrics-host", string_flag(&f.metrics_host)},
      {"metrics-prefix", string_flag(&f.metrics_prefix)},
      {"metrics-port-file", string_flag(&f.metrics_port_file)},
      {"capacity-typical-tokens", int_flag(&f.capacity_typical_tokens, 0)},
      {"collective-timeout", duration_flag(&f.collective_timeout)},
      {"health-interval", duration_flag(&f.health_interval)},
      {"health-timeout", duration_flag(&f.health_timeout)},
      {"load-timeout", duration_flag(&f.load_timeout)},
      {"drain-timeout", duration_flag(&f.drain_timeout)},
      {"migration-limit", int_flag(&f.migration_limit, 0)},
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      f.help = true;
      return f;
    }
    if (!absl::StartsWith(arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    // Accept vLLM's underscore spelling too.
    for (char& c : name) c = c == '_' ? '-' : c;
    // Boolean flags (vLLM's BooleanOptionalAction): no value; --flag=true|false also works.
    if (name == "batch-invariant") {
      bool on = true;
      if (has_value && !absl::SimpleAtob(value, &on)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, ": expected true or false, got '", value, "'"));
      }
      f.batch_invariant = on;
      continue;
    }
    if (name == "enable-prefix-caching" || name == "no-enable-prefix-caching") {
      bool on = name == "enable-prefix-caching";
      if (has_value) {
        bool v = false;
        if (!absl::SimpleAtob(value, &v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("--", name, ": expected true or false, got '", value, "'"));
        }
        on = on == v;
      }
      f.enable_prefix_caching = on;
      continue;
    }
    auto it = setters.find(name);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat("--", name, ": missing value"));
      }
      value = args[++i];
    }
    absl::Status s = it->second(name, value);
    if (!s.ok()) return s;
  }
  if (f.model.empty()) return absl::InvalidArgumentError("--model: required");
  if (f.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port: must be <= 65535, got ", f.port));
  }
  if (f.http_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-port: must be <= 65535, got ", f.http_port));
  }
  if (f.metrics_port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-port: must be <= 65535, got ", f.metrics_port));
  }
  if (!f.metrics_port_file.empty() && f.metrics_port < 0) {
    return absl::InvalidArgumentError("--metrics-port-file: needs --metrics-port");
  }
  if (!f.http_port_file.empty() && f.http_port < 0) {
    return absl::InvalidArgumentError("--http-port-file: needs --http-port");
  }
  return f;
}

}  // namespace g4
