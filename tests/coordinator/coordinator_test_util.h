// Shared fixtures of the coordinator tests: the real tokenizer + chat template codec, the tiny
// model's config, and a bounded wait.
#ifndef G4SERVE_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_
#define G4SERVE_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_

#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/model_config.h"
#include "coordinator/api/text_codec.h"
#include "gtest/gtest.h"

namespace g4::testing {

// The real Gemma tokenizer and the Gemma 4 chat template, loaded once per test binary.
inline const HfTextCodec* Codec() {
  static const HfTextCodec* codec = [] {
    absl::StatusOr<std::unique_ptr<HfTextCodec>> c = HfTextCodec::Load(
        "tests/data/tokenizer/tokenizer.json.xz", "tests/data/chat_templates/gemma-4.jinja");
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->release() : nullptr;
  }();
  return codec;
}

// The config of the embedded tiny dense model.
inline ModelConfig TinyConfig() {
  std::ifstream in("tests/data/golden/dense/config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  absl::StatusOr<ModelConfig> c = ParseModelConfig(ss.str());
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ModelConfig{};
}

// Polls `f` every 10 ms until it holds or `timeout` passes; returns its last value.
inline bool Eventually(const std::function<bool()>& f, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (f()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return f();
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COORDINATOR_COORDINATOR_TEST_UTIL_H_
