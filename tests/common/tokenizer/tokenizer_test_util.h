// Shared helpers for the tokenizer tests.
#ifndef G4SERVE_TESTS_COMMON_TOKENIZER_TOKENIZER_TEST_UTIL_H_
#define G4SERVE_TESTS_COMMON_TOKENIZER_TOKENIZER_TEST_UTIL_H_

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4::testing {

inline constexpr char kGemma3Tokenizer[] = "tests/data/tokenizer/tokenizer.json.xz";

// Loaded once per test binary.
inline const Tokenizer& Gemma3() {
  static const Tokenizer* tok = [] {
    auto t = Tokenizer::LoadFromFile(kGemma3Tokenizer);
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      std::abort();
    }
    return t->release();
  }();
  return *tok;
}

inline std::vector<nlohmann::json> ReadJsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot open " << path;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << path << ": bad line " << out.size() + 1;
    out.push_back(std::move(j));
  }
  return out;
}

inline std::vector<int32_t> Ids(const nlohmann::json& j) {
  std::vector<int32_t> ids;
  for (const auto& v : j) ids.push_back(v.get<int32_t>());
  return ids;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COMMON_TOKENIZER_TOKENIZER_TEST_UTIL_H_
