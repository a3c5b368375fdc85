// Helpers shared by the libFuzzer targets (tools/fuzz.sh, docs/fuzzing.md).
#ifndef G4SERVE_TESTS_FUZZ_FUZZ_UTIL_H_
#define G4SERVE_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace g4::fuzz {

// Seeds a target builds itself (binary formats with no example in tests/data): written as files
// into $G4_FUZZ_SEED_DIR when tools/fuzz.sh sets it. Call from LLVMFuzzerInitialize.
inline void WriteSeedsIfAsked(const std::vector<std::string>& seeds) {
  const char* dir = std::getenv("G4_FUZZ_SEED_DIR");
  if (dir == nullptr || *dir == '\0') return;
  for (size_t i = 0; i < seeds.size(); ++i) {
    std::ofstream out(std::string(dir) + "/built-" + std::to_string(i), std::ios::binary);
    out << seeds[i];
  }
}

}  // namespace g4::fuzz

#endif  // G4SERVE_TESTS_FUZZ_FUZZ_UTIL_H_
