// Jinja2-subset template engine: parse once, render many times.
//
// Renders like jinja2's sandboxed environment as Hugging Face transformers configures it for chat
// templates (trim_blocks, lstrip_blocks, loopcontrols, default Undefined, no autoescape). See
// docs/chat_template.md for the supported subset.
#ifndef G4SERVE_COMMON_JINJA_INTERPRETER_H_
#define G4SERVE_COMMON_JINJA_INTERPRETER_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/jinja/ast.h"
#include "common/jinja/lexer.h"
#include "common/jinja/value.h"

namespace g4::jinja {

class Template {
 public:
  // Parses `source`; syntax errors are InvalidArgument naming the template line.
  static absl::StatusOr<Template> Parse(std::string_view source, const LexerOptions& options = {});

  // Renders with the variables of `context` (a dict Value) on top of the built-in globals
  // (namespace, range, dict, raise_exception, strftime_now). Runtime errors (undefined
  // operations, type errors, raise_exception) are InvalidArgument naming the template line.
  absl::StatusOr<std::string> Render(const Value& context) const;

 private:
  std::shared_ptr<const TemplateAst> ast_;
};

}  // namespace g4::jinja

#endif  // G4SERVE_COMMON_JINJA_INTERPRETER_H_
