// Loads tests/data/golden/<variant>/reference.json (written by tools/golden/generate.py from
// Hugging Face transformers; schema in tests/data/golden/README.md).
#ifndef G4SERVE_TESTS_WORKER_MODEL_GOLDEN_REFERENCE_H_
#define G4SERVE_TESTS_WORKER_MODEL_GOLDEN_REFERENCE_H_

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace g4::testing {

using Logits = std::vector<std::vector<float>>;  // [positions][vocab]

struct GoldenSequence {
  std::vector<int32_t> tokens;
  Logits logits;
};

struct GoldenReference {
  GoldenSequence prefill;
  GoldenSequence prefill_decode;  // logits for positions prefill_len..end
  int prefill_len = 0;
  std::vector<GoldenSequence> batch;
  std::vector<int32_t> greedy_prompt;
  std::vector<int32_t> greedy_tokens;
  Logits greedy_logits;
};

inline std::string GoldenDir(const std::string& variant) {
  return "tests/data/golden/" + variant;
}

inline GoldenReference LoadGoldenReference(const std::string& variant) {
  std::ifstream in(GoldenDir(variant) + "/reference.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str());
  const nlohmann::json& c = j.at("cases");
  GoldenReference r;
  auto seq = [](const nlohmann::json& s) {
    return GoldenSequence{s.at("tokens").get<std::vector<int32_t>>(), s.at("logits").get<Logits>()};
  };
  r.prefill = seq(c.at("prefill"));
  r.prefill_decode = seq(c.at("prefill_decode"));
  r.prefill_len = c.at("prefill_decode").at("prefill_len").get<int>();
  for (const auto& s : c.at("batch").at("sequences")) r.batch.push_back(seq(s));
  r.greedy_prompt = c.at("greedy").at("prompt").get<std::vector<int32_t>>();
  r.greedy_tokens = c.at("greedy").at("tokens").get<std::vector<int32_t>>();
  r.greedy_logits = c.at("greedy").at("logits").get<Logits>();
  return r;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_WORKER_MODEL_GOLDEN_REFERENCE_H_
