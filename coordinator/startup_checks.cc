#include "coordinator/startup_checks.h"

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/checkpoint.h"
#include "common/status_macros.h"
#include "coordinator/planner/planner.h"

namespace g4 {

absl::Status CheckCheckpoint(const std::string& model_dir, const ModelConfig& config) {
  G4_ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(model_dir));
  // The weights belong to this config: the embedding table's shape, and one attention block per
  // declared layer (a truncated export or a config from another model fails here).
  G4_ASSIGN_OR_RETURN(TensorRef embed, ckpt->Find("embed_tokens.weight"));
  const std::vector<int64_t> want = {config.vocab_size, config.hidden_size};
  if (embed.info->shape != want) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor embed_tokens.weight in ", embed.file->path(), ": shape [",
                     absl::StrJoin(embed.info->shape, ", "), "], config.json implies [",
                     config.vocab_size, ", ", config.hidden_size, "] (vocab_size, hidden_size)"));
  }
  for (int l = 0; l < config.num_layers; ++l) {
    const std::string name = absl::StrCat("layers.", l, ".self_attn.q_proj.weight");
    if (!ckpt->Has(name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          model_dir, ": no weights for layer ", l, " (", name, "), config.json declares ",
          config.num_layers, " layers (num_hidden_layers)"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPlanShape(const FleetOptions& options) {
  PlanRequest request = FleetPlanRequest(options);
  // Devices are not known yet: plan for an amount of memory no model exceeds, so that only the
  // shape (degrees, context) can fail. The real plan is made when workers register.
  request.device_kind = DeviceKind::kCpu;
  request.device_memory_bytes = int64_t{1} << 50;  // 1 PiB
  absl::StatusOr<g4serve::v1::ParallelPlan> plan = MakePlan(options.model_config, request);
  if (plan.ok() || plan.status().code() == absl::StatusCode::kResourceExhausted) {
    return absl::OkStatus();
  }
  // The planner names its request fields; say them as the coordinator's flags.
  std::string message(plan.status().message());
  for (const auto& [field, flag] :
       {std::pair<absl::string_view, absl::string_view>{"max-context", "--max-model-len"},
        {"tensor-parallel-size", "--tensor-parallel-size"},
        {"expert-parallel-size", "--expert-parallel-size"}}) {
    if (absl::StartsWith(message, field)) {
      message = absl::StrCat(flag, message.substr(field.size()));
      break;
    }
  }
  return absl::Status(plan.status().code(), message);
}

}  // namespace g4
