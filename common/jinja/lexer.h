// Jinja lexer with jinja2's whitespace semantics (trim_blocks, lstrip_blocks, `-`/`+` markers).
#ifndef G4SERVE_COMMON_JINJA_LEXER_H_
#define G4SERVE_COMMON_JINJA_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace g4::jinja {

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

enum class TokenType {
  kText,        // template data (value = text after whitespace control)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,        // identifier or keyword
  kString,      // string literal (value = unescaped text)
  kInt,         // integer literal (value = digits, '_' removed)
  kFloat,       // float literal (value = text, '_' removed)
  kOperator,    // punctuation / operator (value = the operator)
  kEof,
};

struct Token {
  TokenType type;
  std::string value;
  int line;
};

// Tokenizes a template. Errors (unterminated tags/strings/comments, unexpected characters) name
// the line.
absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source,
                                            const LexerOptions& options = {});

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_LEXER_H_
