#include "tools/g4_plan/plan_options.h"

#include <cctype>
#include <cmath>
#include <fstream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/flags/flag_set.h"
#include "common/status_macros.h"

namespace g4 {

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

namespace {

constexpr char kProgram[] = "g4-plan";
constexpr char kSynopsis[] =
    "--model DIR (--gpus N --gpu-memory SIZE | --cpu-ranks N [--cpu-memory SIZE]) [flags]";
constexpr char kDescription[] =
    "Prints the parallel plan for a model directory (only config.json is read) on a set of "
    "devices: degrees, each rank's slices and memory, the context x concurrency that fits. "
    "SIZE: 80GiB, 80G (binary), 80GB (decimal), 81920MiB, or bytes. docs/parallel_plan.md.";
constexpr int64_t kIntMax = 1 << 30;

void DeclareFlags(FlagSet& flags, PlanOptions& o) {
  flags.Add("model", &o.model_dir, "model directory (config.json)")
      .Value("DIR")
      .Required()
      .NonEmpty();
  flags.Add("gpus", &o.gpus, "plan for N GPUs").Range(1, kIntMax).Default("none");
  flags.AddCustom("gpu-memory", "SIZE", "memory of each GPU; required with --gpus",
                  [&o](absl::string_view v) -> absl::Status {
                    G4_ASSIGN_OR_RETURN(o.gpu_memory_bytes, ParseByteSize(v));
                    return absl::OkStatus();
                  });
  flags.Add("cpu-ranks", &o.cpu_ranks, "plan for N CPU ranks on this host")
      .Range(1, kIntMax)
      .Default("none");
  flags.AddCustom("cpu-memory", "SIZE", "memory per CPU rank",
                  [&o](absl::string_view v) -> absl::Status {
                    G4_ASSIGN_OR_RETURN(o.cpu_memory_bytes, ParseByteSize(v));
                    return absl::OkStatus();
                  })
      .Default("MemTotal of /proc/meminfo / --cpu-ranks");
  flags.Add("max-context", &o.max_context, "context to plan for, in tokens")
      .Value("TOKENS")
      .Range(1, int64_t{1} << 40)
      .Default("max_position_embeddings");
  flags.Add("json", &o.json, "print the ParallelPlan message as protobuf JSON instead of a table");
  flags.Add("tensor-parallel-size", &o.tensor_parallel_size, "force the tensor-parallel degree")
      .Range(1, kIntMax)
      .Default("the smallest valid degree that fits");
  flags.Add("expert-parallel-size", &o.expert_parallel_size, "force the expert-parallel degree")
      .Range(1, kIntMax)
      .Default("MoE: = tensor-parallel-size");
  flags.Add("max-num-batched-tokens", &o.max_num_batched_tokens,
            "tokens per step (sizes the activations)")
      .Range(1, int64_t{1} << 40);
  flags.Add("max-num-seqs", &o.max_num_seqs, "running sequences per replica").Range(1, kIntMax);
  flags.Add("gpu-memory-utilization", &o.memory_utilization,
            "fraction of each device the plan may use")
      .Value("F")
      .RealRange(0.0, 1.0, /*exclusive_min=*/true);
}

constexpr FlagSpec<PlanOptions> kSpec = {kProgram, kSynopsis, kDescription, DeclareFlags};

}  // namespace

std::string PlanUsage() { return kSpec.Usage(); }

absl::StatusOr<PlanOptions> ParsePlanOptions(absl::Span<const char* const> args) {
  PlanOptions o;
  G4_RETURN_IF_ERROR(kSpec.Parse(args, &o));
  if (o.help) return o;
  // Sizes parse to at least one byte, so a given one is never 0.
  const bool have_gpu_memory = o.gpu_memory_bytes > 0;
  const bool have_cpu_memory = o.cpu_memory_bytes > 0;
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
