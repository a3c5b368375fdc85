#include "tools/g4_plan/plan_options.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace g4 {

const char kPlanUsage[] =
    "usage: g4-plan --model DIR (--gpus N --gpu-memory SIZE | --cpu-ranks N [--cpu-memory SIZE]) "
    "[--max-context TOKENS] [--json] [--tensor-parallel-size N] [--expert-parallel-size N] "
    "[--max-num-batched-tokens N] [--max-num-seqs N] [--gpu-memory-utilization F]";

absl::StatusOr<int64_t> ParseByteSize(absl::string_view text) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  const absl::string_view number = text.substr(0, i);
  const std::string unit = absl::AsciiStrToLower(text.substr(i));
  double value;
  if (number.empty() || !absl::SimpleAtod(number, &value) || !(value > 0)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a size (e.g. 80GiB)"));
  }
  double scale;
  if (unit.empty() || unit == "b") {
    scale = 1;
  } else if (unit == "k" || unit == "kib") {
    scale = 1024.0;
  } else if (unit == "m" || unit == "mib") {
    scale = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gib") {
    scale = 1024.0 * 1024 * 1024;
  } else if (unit == "t" || unit == "tib") {
    scale = 1024.0 * 1024 * 1024 * 1024;
  } else if (unit == "kb") {
    scale = 1e3;
  } else if (unit == "mb") {
    scale = 1e6;
  } else if (unit == "gb") {
    scale = 1e9;
  } else if (unit == "tb") {
    scale = 1e12;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", text, "\": unknown unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"));
  }
  const double bytes = std::floor(value * scale);
  if (bytes < 1 || bytes > 9.0e18) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is out of range"));
  }
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<PlanOptions> ParsePlanOptions(absl::Span<const char* const> args) {
  PlanOptions o;
  bool have_gpu_memory = false, have_cpu_memory = false;
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    absl::string_view value;
    bool inline_value = false;
    if (const size_t eq = arg.find('='); arg.substr(0, 2) == "--" && eq != absl::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    if (arg == "--json") {
      if (inline_value) return absl::InvalidArgumentError("--json takes no value");
      o.json = true;
      continue;
    }
    auto take = [&]() -> absl::StatusOr<absl::string_view> {
      if (inline_value) return value;
      if (i + 1 >= args.size()) return absl::InvalidArgumentError(absl::StrCat(arg, " needs a value"));
      return absl::string_view(args[++i]);
    };
    auto positive = [&](absl::string_view v, int64_t max) -> absl::StatusOr<int64_t> {
      int64_t n;
      if (!absl::SimpleAtoi(v, &n) || n < 1 || n > max) {
        return absl::InvalidArgumentError(
            absl::StrCat(arg, ": \"", v, "\" is not a positive integer"));
      }
      return n;
    };
    auto size = [&](absl::string_view v) -> absl::StatusOr<int64_t> {
      absl::StatusOr<int64_t> s = ParseByteSize(v);
      if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(arg, ": ", s.status().message()));
      return s;
    };
    constexpr int64_t kIntMax = 1 << 30;
    absl::StatusOr<absl::string_view> v;
    if (arg == "--model" || arg == "--gpus" || arg == "--gpu-memory" || arg == "--cpu-ranks" ||
        arg == "--cpu-memory" || arg == "--max-context" || arg == "--tensor-parallel-size" ||
        arg == "--expert-parallel-size" || arg == "--max-num-batched-tokens" ||
        arg == "--max-num-seqs" || arg == "--gpu-memory-utilization") {
      v = take();
      if (!v.ok()) return v.status();
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag \"", args[i], "\""));
    }
    absl::StatusOr<int64_t> n;
    if (arg == "--model") {
      o.model_dir = std::string(*v);
      if (o.model_dir.empty()) return absl::InvalidArgumentError("--model: empty path");
      continue;
    }
    if (arg == "--gpu-memory" || arg == "--cpu-memory") {
      n = size(*v);
      if (!n.ok()) return n.status();
      (arg == "--gpu-memory" ? o.gpu_memory_bytes : o.cpu_memory_bytes) = *n;
      (arg == "--gpu-memory" ? have_gpu_memory : have_cpu_memory) = true;
      continue;
    }
    if (arg == "--gpu-memory-utilization") {
      double f;
      if (!absl::SimpleAtod(*v, &f) || !(f > 0.0 && f <= 1.0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(arg, ": \"", *v, "\" is not a fraction in (0, 1]"));
      }
      o.memory_utilization = f;
      continue;
    }
    n = positive(*v, arg == "--max-context" || arg == "--max-num-batched-tokens" ? (int64_t{1} << 40)
                                                                                : kIntMax);
    if (!n.ok()) return n.status();
    if (arg == "--gpus") o.gpus = static_cast<int>(*n);
    if (arg == "--cpu-ranks") o.cpu_ranks = static_cast<int>(*n);
    if (arg == "--max-context") o.max_context = *n;
    if (arg == "--tensor-parallel-size") o.tensor_parallel_size = static_cast<int>(*n);
    if (arg == "--expert-parallel-size") o.expert_parallel_size = static_cast<int>(*n);
    if (arg == "--max-num-batched-tokens") o.max_num_batched_tokens = *n;
    if (arg == "--max-num-seqs") o.max_num_seqs = static_cast<int>(*n);
  }
  if (o.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  if ((o.gpus > 0) == (o.cpu_ranks > 0)) {
    return absl::InvalidArgumentError("exactly one of --gpus and --cpu-ranks is required");
  }
  if (o.gpus > 0 && !have_gpu_memory) {
    return absl::InvalidArgumentError("--gpu-memory is required with --gpus");
  }
  if (o.gpus > 0 && have_cpu_memory) {
    return absl::InvalidArgumentError("--cpu-memory goes with --cpu-ranks, not --gpus");
  }
  if (o.cpu_ranks > 0 && have_gpu_memory) {
    return absl::InvalidArgumentError("--gpu-memory goes with --gpus, not --cpu-ranks");
  }
  return o;
}

absl::StatusOr<PlanRequest> MakePlanRequest(const PlanOptions& o, absl::string_view model_name,
                                            int64_t host_memory_bytes) {
  PlanRequest r;
  r.model_name = std::string(model_name);
  if (o.gpus > 0) {
    r.device_kind = DeviceKind::kGpu;
    r.num_devices = o.gpus;
    r.device_memory_bytes = o.gpu_memory_bytes;
  } else {
    r.device_kind = DeviceKind::kCpu;
    r.num_devices = o.cpu_ranks;
    // CPU ranks of one host share its memory.
    r.device_memory_bytes =
        o.cpu_memory_bytes > 0 ? o.cpu_memory_bytes : host_memory_bytes / o.cpu_ranks;
    if (r.device_memory_bytes <= 0) {
      return absl::InvalidArgumentError("--cpu-memory: host memory unknown, give it explicitly");
    }
  }
  r.memory_utilization = o.memory_utilization;
  r.max_context = o.max_context;
  r.tensor_parallel_size = o.tensor_parallel_size;
  r.expert_parallel_size = o.expert_parallel_size;
  r.max_num_batched_tokens = o.max_num_batched_tokens;
  r.max_num_seqs = o.max_num_seqs;
  return r;
}

absl::StatusOr<int64_t> HostMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key, unit;
  int64_t kib;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  return absl::UnavailableError("/proc/meminfo has no MemTotal (give --cpu-memory)");
}

}  // namespace g4
