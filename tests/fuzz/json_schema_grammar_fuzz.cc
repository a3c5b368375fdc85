// Structured outputs (common/grammar) on arbitrary input: the first part is a JSON schema, the
// rest drives a walk through the compiled grammar. Every step checks the property the engine
// relies on: the token mask allows exactly the tokens AcceptToken accepts, and the walk never
// reaches a state with no allowed token.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/grammar/compiler.h"
#include "common/grammar/json_grammar.h"
#include "common/grammar/matcher.h"
#include "nlohmann/json.hpp"
#include "tests/common/grammar/small_vocab.h"

namespace {

using g4::grammar::GrammarCompiler;
using g4::grammar::GrammarMatcher;
using g4::grammar::StructuredOutputSpec;
namespace t = g4::grammar::testing;

GrammarCompiler& Compiler() {
  static GrammarCompiler* compiler = new GrammarCompiler(t::SmallVocab());
  return *compiler;
}

bool Allowed(const std::vector<uint32_t>& bits, int32_t id) {
  return (bits[static_cast<size_t>(id) >> 5] >> (id & 31)) & 1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  // "<schema>\0<walk bytes>": each walk byte picks one of the allowed tokens.
  const size_t split = input.find('\0');
  const absl::string_view schema_text = input.substr(0, split);
  const absl::string_view walk =
      split == absl::string_view::npos ? absl::string_view() : input.substr(split + 1);

  StructuredOutputSpec spec;
  spec.kind = StructuredOutputSpec::Kind::kJsonSchema;
  spec.schema = nlohmann::ordered_json::parse(schema_text, nullptr, /*allow_exceptions=*/false);
  if (spec.schema.is_discarded()) return 0;
  auto compiled = Compiler().Compile(spec);
  if (!compiled.ok()) return 0;

  GrammarMatcher matcher(*compiled, {t::kEos, t::kEndOfTurn});
  const g4::grammar::TokenVocab& vocab = (*compiled)->vocab();
  std::vector<uint32_t> bits(vocab.bitmask_words());
  for (size_t step = 0; step < walk.size() && step < 64 && !matcher.IsTerminated(); ++step) {
    matcher.FillNextTokenBitmask(absl::MakeSpan(bits));
    std::vector<int32_t> allowed;
    for (int32_t id = 0; id < vocab.size(); ++id) {
      GrammarMatcher copy = matcher;
      const bool accepted = copy.AcceptToken(id);
      if (accepted != Allowed(bits, id)) __builtin_trap();  // mask and matcher disagree
      if (accepted) allowed.push_back(id);
    }
    if (allowed.empty()) __builtin_trap();  // a dead end: the engine could sample nothing
    const int32_t pick = allowed[static_cast<uint8_t>(walk[step]) % allowed.size()];
    if (!matcher.AcceptToken(pick)) __builtin_trap();
  }
  return 0;
}
