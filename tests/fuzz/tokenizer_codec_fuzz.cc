// The real Gemma tokenizer (262144 tokens) encoding random bytes (invalid UTF-8 included) and
// decoding random ids. Properties: every encoded id has a token; Encode then Decode gives back
// the UTF-8-repaired text (U+2581 aside); the incremental detokenizer fed one id at a time gives
// what Decode gives.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"

namespace {

const g4::Tokenizer* Tok() {
  static const g4::Tokenizer* tok = [] {
    auto t = g4::Tokenizer::LoadFromFile("tests/data/tokenizer/tokenizer.json.xz");
    if (!t.ok()) {
      std::fprintf(stderr, "tokenizer_codec_fuzz: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    return t->release();
  }();
  return tok;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Tok();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const g4::Tokenizer& tok = *Tok();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::vector<int32_t> ids = tok.Encode(text);
  for (int32_t id : ids) {
    if (!tok.HasToken(id)) __builtin_trap();
  }
  absl::StatusOr<std::string> decoded = tok.Decode(ids);
  if (!decoded.ok()) __builtin_trap();
  // Decoding gives the text back, except that U+2581 (SentencePiece's space mark, which the
  // normalizer puts for spaces) decodes to a space, as in transformers.
  if (text.find("\xe2\x96\x81") == std::string::npos &&
      *decoded != g4::tokenizer_internal::SanitizeUtf8(text)) {
    __builtin_trap();
  }
  auto detok = g4::IncrementalDetokenizer::Create(&tok);
  if (!detok.ok()) __builtin_trap();
  std::string streamed;
  for (int32_t id : ids) {
    absl::StatusOr<std::string> piece = (*detok)->Feed(id);
    if (!piece.ok()) __builtin_trap();
    streamed += *piece;
  }
  streamed += (*detok)->Flush();
  if (streamed != *decoded) __builtin_trap();
  (void)tok.Encode(text, /*add_special_tokens=*/true);
  // Random ids: the input read as little-endian int32s.
  std::vector<int32_t> random_ids(size / 4);
  for (size_t i = 0; i < random_ids.size(); ++i) {
    uint32_t v = 0;
    for (int b = 0; b < 4; ++b) v |= static_cast<uint32_t>(data[4 * i + b]) << (8 * b);
    random_ids[i] = static_cast<int32_t>(v % 300000);  // mostly valid, some out of range
  }
  (void)tok.Decode(random_ids);
  (void)tok.Decode(random_ids, /*skip_special_tokens=*/true);
  return 0;
}
