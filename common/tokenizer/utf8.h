// UTF-8 helpers shared by the tokenizer pieces.
#ifndef G4SERVE_COMMON_TOKENIZER_UTF8_H_
#define G4SERVE_COMMON_TOKENIZER_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace g4::tokenizer_internal {

// U+FFFD REPLACEMENT CHARACTER, UTF-8 encoded.
inline constexpr absl::string_view kReplacementChar = "\xEF\xBF\xBD";

// Length in bytes of the valid UTF-8 sequence starting at text[pos], or 0 when the bytes there are
// not a well-formed sequence (Unicode Table 3-7: no overlongs, no surrogates, nothing > U+10FFFF).
size_t ValidSequenceLength(absl::string_view text, size_t pos);

// True when `text` is well-formed UTF-8.
bool IsValidUtf8(absl::string_view text);

// Replaces every maximal subpart of an ill-formed subsequence with U+FFFD (the W3C/Unicode
// "substitution of maximal subparts" practice; identical to Python's
// `bytes.decode("utf-8", errors="replace")`). Valid input is returned unchanged.
std::string SanitizeUtf8(absl::string_view text);

// Decodes the code point of a valid sequence of `len` bytes at `p`.
uint32_t DecodeCodePoint(const char* p, size_t len);

// Appends the UTF-8 encoding of `cp` to `out`.
void AppendCodePoint(uint32_t cp, std::string* out);

// True for the characters Rust's `char::is_whitespace` accepts (Unicode White_Space).
bool IsUnicodeWhitespace(uint32_t cp);

}  // namespace g4::tokenizer_internal

#endif  // G4SERVE_COMMON_TOKENIZER_UTF8_H_
