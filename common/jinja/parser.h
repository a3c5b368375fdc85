// Parser from Jinja tokens to the AST (jinja2 operator precedence).
#ifndef G4SERVE_COMMON_JINJA_PARSER_H_
#define G4SERVE_COMMON_JINJA_PARSER_H_

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/jinja/ast.h"
#include "common/jinja/lexer.h"

namespace g4::jinja {

// Parses template source. Syntax errors are InvalidArgument naming the template line.
absl::StatusOr<std::unique_ptr<TemplateAst>> ParseTemplate(std::string_view source,
                                                        const LexerOptions& options = {});

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_PARSER_H_
