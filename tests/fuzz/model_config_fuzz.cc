// config.json and generation_config.json parsing on arbitrary text: errors, never a crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/generation_config.h"
#include "common/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = g4::ParseModelConfig(text, "config.json");
  if (config.ok()) {
    // What the rest of the system asks a validated config.
    for (int l = 0; l < config->num_layers; ++l) {
      (void)config->NumKvHeads(l);
      (void)config->MlpWidth(l);
    }
  }
  (void)g4::ParseGenerationConfig(text, "generation_config.json");
  return 0;
}
