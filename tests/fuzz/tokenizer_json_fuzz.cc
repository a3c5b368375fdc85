// Tokenizer::LoadFromJson on arbitrary text; a tokenizer that loads must also encode and decode.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  auto tok = g4::Tokenizer::LoadFromJson(json);
  if (!tok.ok()) return 0;
  const std::vector<int32_t> ids =
      (*tok)->Encode("Hello, world! 123 \xc3\xa9\xe2\x82\xac\n\t", true);
  (void)(*tok)->Decode(ids);
  return 0;
}
