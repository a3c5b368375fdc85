// The parallel planner: turns a model config plus a set of equal devices into a ParallelPlan
// (proto/g4serve/v1/plan.proto): tensor- and expert-parallel degrees, each rank's tensor slices,
// each rank's memory (weights, the sliding and global KV pools, activations/workspace) and the
// context × concurrency that fits. Pure functions, no I/O. Scheme: docs/parallel_plan.md; it is
// the same layout as worker/model/shard_layout.h.
#ifndef G4SERVE_COORDINATOR_PLANNER_PLANNER_H_
#define G4SERVE_COORDINATOR_PLANNER_PLANNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model_config.h"
#include "common/safetensors.h"
#include "g4serve/v1/plan.pb.h"

namespace g4 {

enum class DeviceKind { kGpu, kCpu };

struct PlanRequest {
  std::string model_name;
  DeviceKind device_kind = DeviceKind::kGpu;
  int num_devices = 1;
  int64_t device_memory_bytes = 0;  // per device
  double memory_utilization = 0.9;  // fraction of each device the plan may use (vLLM's default)
  int64_t max_context = 0;          // 0: max_position_embeddings
  int tensor_parallel_size = 0;     // 0: smallest valid degree that fits
  int expert_parallel_size = 0;     // 0: MoE: = tensor_parallel_size (experts never TP-split)
  int64_t max_num_batched_tokens = 8192;
  int max_num_seqs = 256;
  int weight_dtype_bytes = 2;          // bf16
  int kv_dtype_bytes = 2;              // bf16
  int64_t runtime_reserve_bytes = -1;  // -1: 512 MiB on GPU (context, cuBLAS, NCCL), 32 MiB on CPU (the warm process)
};

// Makes the plan. InvalidArgument names the request field or config key that is wrong
// (e.g. "tensor-parallel-size 3: num_attention_heads = 32 is not divisible by 3");
// ResourceExhausted when weights + workspace do not fit: "does not fit: needs X GiB per rank,
// device has Y GiB usable (...) (short by Z GiB)".
absl::StatusOr<g4serve::v1::ParallelPlan> MakePlan(const ModelConfig& config,
                                                   const PlanRequest& request);

// Checks a plan against the config: degrees valid, one RankPlan per rank with consistent ids,
// every tensor the engine loads covered exactly once per replica by the ranks' slices (a
// replicated tensor: whole on every rank; replicated KV heads: each head on exactly
// replication_factor ranks), slice bytes and memory sums consistent, the concurrency claims
// within each rank's KV budget. FailedPrecondition names the first inconsistency.
absl::Status CheckPlan(const ModelConfig& config, const g4serve::v1::ParallelPlan& plan);

// One concrete tensor part a rank loads: `name` is canonical (no "{L}"); for 3-D expert tensors
// experts [expert_begin, expert_end) are loaded, each with slice.rows/cols (slice.index0 = -1);
// otherwise expert_begin = expert_end = -1. Slice ends are explicit (never -1).
struct RankTensor {
  std::string name;
  std::vector<int64_t> shape;
  int64_t expert_begin = -1;
  int64_t expert_end = -1;
  TensorSlice slice;
};

// Expands plan.ranks(rank).slices into one entry per concrete tensor (what the worker loads).
absl::StatusOr<std::vector<RankTensor>> SlicesForRank(const ModelConfig& config,
                                                      const g4serve::v1::ParallelPlan& plan,
                                                      int rank);

// Human-readable plan: summary, KV arithmetic, capacity, per-rank memory table, per-rank slices.
std::string FormatPlanTable(const g4serve::v1::ParallelPlan& plan);

// The plan as JSON (protobuf JSON mapping: int64 fields are strings; field names as in the
// .proto; every field printed).
absl::StatusOr<std::string> FormatPlanJson(const g4serve::v1::ParallelPlan& plan);

// "20.78 GiB" (two decimals, binary units).
std::string FormatGiB(int64_t bytes);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_PLANNER_PLANNER_H_
