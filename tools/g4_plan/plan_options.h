// Command-line options of g4-plan.
#ifndef G4SERVE_TOOLS_G4_PLAN_PLAN_OPTIONS_H_
#define G4SERVE_TOOLS_G4_PLAN_PLAN_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "coordinator/planner/planner.h"

namespace g4 {

struct PlanOptions {
  std::string model_dir;
  int gpus = 0;
  int64_t gpu_memory_bytes = 0;
  int cpu_ranks = 0;
  int64_t cpu_memory_bytes = 0;  // per rank; 0: MemTotal from /proc/meminfo / cpu_ranks
  int64_t max_context = 0;       // 0: max_position_embeddings
  bool json = false;
  int tensor_parallel_size = 0;
  int expert_parallel_size = 0;
  int64_t max_num_batched_tokens = 8192;
  int max_num_seqs = 256;
  double memory_utilization = 0.9;
  bool help = false;  // --help / -h: nothing else was checked
};

// The --help text: every flag with its meaning and default.
std::string PlanUsage();

// Parses argv[1..] (common/flags/flag_set.h). Errors name the flag.
absl::StatusOr<PlanOptions> ParsePlanOptions(absl::Span<const char* const> args);

// "80GiB", "80G" (binary), "80GB" (decimal), "81920MiB", "1.5TiB", "1024" (bytes).
absl::StatusOr<int64_t> ParseByteSize(absl::string_view text);

// The PlanRequest for `options`; `host_memory_bytes` is used for CPU ranks without --cpu-memory.
absl::StatusOr<PlanRequest> MakePlanRequest(const PlanOptions& options, absl::string_view model_name,
                                            int64_t host_memory_bytes);

// MemTotal from /proc/meminfo, in bytes.
absl::StatusOr<int64_t> HostMemoryBytes();

}  // namespace g4

#endif  // G4SERVE_TOOLS_G4_PLAN_PLAN_OPTIONS_H_
