// The wire's sampling and stopping fields (GenerateRequest.sampling / .stopping, protobuf bytes
// from the network) through ToSamplingRequest and ResolveSamplingParams, as the coordinator and
// the worker do; accepted parameters then sample a few tokens from fixed logits.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/generation_config.h"
#include "g4serve/v1/inference.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/fuzz_util.h"
#include "worker/sampling/proto_conversion.h"
#include "worker/sampling/sampler.h"
#include "worker/sampling/sampling_params.h"

namespace {

constexpr int kVocab = 64;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is a parse failure; protobuf also logs each one.
  google::protobuf::SetLogHandler(nullptr);
  std::vector<std::string> seeds;
  g4serve::v1::GenerateRequest r;
  r.mutable_sampling()->set_temperature(0.7f);
  r.mutable_sampling()->set_top_k(40);
  r.mutable_sampling()->set_top_p(0.9f);
  r.mutable_sampling()->set_seed(42);
  r.mutable_stopping()->set_max_tokens(8);
  seeds.push_back(r.SerializeAsString());
  r.mutable_sampling()->set_min_p(0.05f);
  r.mutable_sampling()->set_repetition_penalty(1.1f);
  r.mutable_sampling()->set_presence_penalty(0.5f);
  r.mutable_sampling()->set_frequency_penalty(0.25f);
  r.mutable_sampling()->set_logprobs(5);
  r.mutable_stopping()->add_stop("END");
  r.mutable_stopping()->add_stop_token_ids(3);
  r.mutable_stopping()->set_ignore_eos(true);
  seeds.push_back(r.SerializeAsString());
  g4serve::v1::GenerateRequest greedy;
  greedy.mutable_sampling()->set_temperature(0);
  seeds.push_back(greedy.SerializeAsString());
  g4::fuzz::WriteSeedsIfAsked(seeds);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g4serve::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto sampling = g4::ToSamplingRequest(request.sampling(), request.stopping());
  if (!sampling.ok()) return 0;
  g4::GenerationConfig config;
  auto params = g4::ResolveSamplingParams(*sampling, config, kVocab);
  if (!params.ok()) return 0;
  std::vector<int32_t> prompt = {1, 2, 3, 2};
  g4::SequenceSamplingState state(*params, prompt);
  std::vector<float> logits(kVocab);
  for (int i = 0; i < kVocab; ++i) logits[i] = std::sin(static_cast<float>(i)) * 4.0f;
  for (int step = 0; step < 4 && !state.finished(); ++step) {
    auto result = g4::Sample(logits, state);
    if (!result.ok()) break;
    if (result->token < 0 || result->token >= kVocab) __builtin_trap();
  }
  return 0;
}
