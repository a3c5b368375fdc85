// Python str semantics over UTF-8 std::string (code-point indexing, str.isspace() whitespace).
#ifndef G4SERVE_COMMON_JINJA_PY_STRING_H_
#define G4SERVE_COMMON_JINJA_PY_STRING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace g4::jinja {

// Decodes UTF-8 into code points (invalid bytes decode as U+FFFD-free raw byte values).
std::vector<char32_t> DecodeUtf8(std::string_view s);
void AppendUtf8(char32_t cp, std::string& out);
std::string EncodeUtf8(const std::vector<char32_t>& cps, size_t begin, size_t end);
// Number of code points.
size_t Utf8Length(std::string_view s);

// Python str.isspace() for one code point.
bool IsPyWhitespace(char32_t cp);

// str.strip/lstrip/rstrip; `chars` == nullptr strips whitespace.
std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right);
// str.split(sep, maxsplit); sep == nullptr splits on whitespace runs.
std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit);
// str.upper / str.lower (ASCII and Latin-1/Greek/Cyrillic basic letters).
std::string PyUpper(std::string_view s);
std::string PyLower(std::string_view s);
std::string PyReplace(std::string_view s, std::string_view from, std::string_view to,
                      int64_t count);

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_PY_STRING_H_
