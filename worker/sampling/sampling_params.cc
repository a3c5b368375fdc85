#include "worker/sampling/sampling_params.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

absl::Status FieldError(absl::string_view field, absl::string_view requirement, double value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must be ", requirement, ", got ", value));
}

}  // namespace

SamplingParams ApplyDefaults(const SamplingRequest& request, const GenerationConfig& config) {
  SamplingParams p;
  const double default_temperature = config.do_sample ? config.temperature.value_or(1.0) : 0.0;
  p.temperature = request.temperature.value_or(default_temperature);
  p.top_k = request.top_k.value_or(config.do_sample ? config.top_k.value_or(0) : 0);
  p.top_p = request.top_p.value_or(config.do_sample ? config.top_p.value_or(1.0) : 1.0);
  p.min_p = request.min_p.value_or(0.0);
  p.repetition_penalty = request.repetition_penalty.value_or(1.0);
  p.presence_penalty = request.presence_penalty.value_or(0.0);
  p.frequency_penalty = request.frequency_penalty.value_or(0.0);
  p.seed = request.seed;
  p.logprobs = request.logprobs;
  p.logprobs_mode = request.logprobs_mode;
  p.max_tokens = request.max_tokens;
  p.min_tokens = request.min_tokens.value_or(0);
  p.stop_token_ids = request.stop_token_ids;
  if (!request.ignore_eos) {
    for (int id : config.eos_token_ids) {
      if (std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), id) ==
          p.stop_token_ids.end()) {
        p.stop_token_ids.push_back(id);
      }
    }
  }
  p.stop = request.stop;
  return p;
}

absl::Status Validate(const SamplingParams& p, int64_t vocab_size) {
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    return FieldError("temperature", "finite and >= 0", p.temperature);
  }
  if (p.top_k < 0) return FieldError("top_k", ">= 0 (0 disables it)", p.top_k);
  if (!(p.top_p > 0 && p.top_p <= 1)) return FieldError("top_p", "in (0, 1]", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) return FieldError("min_p", "in [0, 1]", p.min_p);
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0) {
    return FieldError("repetition_penalty", "finite and > 0", p.repetition_penalty);
  }
  if (!(p.presence_penalty >= -2 && p.presence_penalty <= 2)) {
    return FieldError("presence_penalty", "in [-2, 2]", p.presence_penalty);
  }
  if (!(p.frequency_penalty >= -2 && p.frequency_penalty <= 2)) {
    return FieldError("frequency_penalty", "in [-2, 2]", p.frequency_penalty);
  }
  if (p.logprobs.has_value() && (*p.logprobs < 0 || *p.logprobs > kMaxLogprobs)) {
    return FieldError("logprobs", absl::StrCat("in [0, ", kMaxLogprobs, "]"), *p.logprobs);
  }
  if (p.max_tokens.has_value() && *p.max_tokens < 1) {
    return FieldError("max_tokens", ">= 1", *p.max_tokens);
  }
  if (p.min_tokens < 0) return FieldError("min_tokens", ">= 0", p.min_tokens);
  if (p.max_tokens.has_value() && p.min_tokens > *p.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_tokens (", p.min_tokens, ") must not exceed max_tokens (", *p.max_tokens, ")"));
  }
  for (int id : p.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop_token_ids: token id ", id, " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  for (const std::string& s : p.stop) {
    if (s.empty()) return absl::InvalidArgumentError("stop: stop strings must not be empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<SamplingParams> ResolveSamplingParams(const SamplingRequest& request,
                                                     const GenerationConfig& config,
                                                     int64_t vocab_size) {
  SamplingParams p = ApplyDefaults(request, config);
  G4_RETURN_IF_ERROR(Validate(p, vocab_size));
  return p;
}

}  // namespace g4
