// What g4-coordinator checks before it serves, so that a mistake in the model directory or the
// parallel plan stops it at start (exit 1, one line naming the problem) instead of surfacing
// after workers register as "no replica available". docs/coordinator.md, "Start-up checks".
//
// Only what needs no worker is checked here. Device memory is known once workers register: a
// replica whose plan does not fit it is FAILED with the planner's reason, which the log line,
// /health and ListModels report (docs/coordinator.md, "Fleet").
#ifndef G4SERVE_COORDINATOR_STARTUP_CHECKS_H_
#define G4SERVE_COORDINATOR_STARTUP_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "coordinator/fleet/fleet_manager.h"

namespace g4 {

// The checkpoint the workers will load: config.json and generation_config.json parse and
// validate; the weights exist (model.safetensors, or model.safetensors.index.json and every
// shard it names) and every shard's header is valid; the embedding table has the shape
// config.json implies and every decoder layer config.json declares has its weights. Errors name
// the file or tensor.
absl::Status CheckCheckpoint(const std::string& model_dir, const ModelConfig& config);

// The replica's plan without its devices: the tensor- and expert-parallel degrees divide the
// model's heads, KV heads, MLP widths, vocabulary and experts, and --max-model-len fits the
// model. InvalidArgument with the planner's reason ("tensor-parallel-size 3:
// num_attention_heads = 32 is not divisible by 3").
absl::Status CheckPlanShape(const FleetOptions& options);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_STARTUP_CHECKS_H_
