// Fast reading of tokenizer.json: a SAX pass that builds a DOM for everything except
// model.vocab and model.merges, which go straight into flat vectors (the 33 MB Gemma file then
// loads in a fraction of the time a full DOM takes). Also .xz decompression.
#ifndef G4SERVE_COMMON_TOKENIZER_TOKENIZER_JSON_H_
#define G4SERVE_COMMON_TOKENIZER_TOKENIZER_JSON_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace g4::tokenizer_internal {

struct TokenizerJson {
  nlohmann::json root;  // without model.vocab / model.merges
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
};

absl::StatusOr<TokenizerJson> ParseTokenizerJson(absl::string_view text);

// Reads a whole file; ".xz" files are decompressed.
absl::StatusOr<std::string> ReadMaybeXzFile(const std::string& path);

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_TOKENIZER_JSON_H_
