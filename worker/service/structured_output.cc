#include "worker/service/structured_output.h"

#include <filesystem>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grammar/structured_output_proto.h"
#include "common/grammar/token_vocab.h"
#include "common/status_macros.h"
#include "common/tokenizer/tokenizer.h"

namespace g4 {

absl::StatusOr<std::unique_ptr<grammar::GrammarCompiler>> LoadGrammarCompiler(
    const std::string& model_dir, int64_t vocab_size) {
  const std::string path = model_dir + "/tokenizer.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::unique_ptr<grammar::GrammarCompiler>();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::LoadFromFile(path);
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), "structured outputs: " + path);
  G4_ASSIGN_OR_RETURN(std::shared_ptr<const grammar::TokenVocab> vocab,
                      grammar::TokenVocab::FromTokenizer(**tokenizer,
                                                         static_cast<int32_t>(vocab_size)));
  return std::make_unique<grammar::GrammarCompiler>(std::move(vocab));
}

absl::StatusOr<std::shared_ptr<grammar::GrammarMatcher>> NewGrammarMatcher(
    grammar::GrammarCompiler* compiler, const g4serve::v1::StructuredOutput& constraint,
    const SamplingParams& params, const GenerationConfig& generation_config) {
  if (compiler == nullptr) {
    return absl::FailedPreconditionError(
        "structured_output: this model has no tokenizer.json, so outputs cannot be constrained");
  }
  G4_ASSIGN_OR_RETURN(grammar::StructuredOutputSpec spec, grammar::SpecFromProto(constraint));
  absl::StatusOr<std::shared_ptr<const grammar::CompiledGrammar>> compiled =
      compiler->Compile(spec);
  if (!compiled.ok()) {
    // Same field names as the coordinator's validation.
    absl::Status named = grammar::ValidateStructuredOutput(constraint);
    return named.ok() ? compiled.status() : named;
  }
  std::vector<int32_t> ends(params.stop_token_ids.begin(), params.stop_token_ids.end());
  if (ends.empty()) {
    ends.assign(generation_config.eos_token_ids.begin(), generation_config.eos_token_ids.end());
  }
  auto matcher = std::make_shared<grammar::GrammarMatcher>(*std::move(compiled), std::move(ends));
  std::vector<uint32_t> warm(compiler->vocab().bitmask_words());
  matcher->FillNextTokenBitmask(absl::MakeSpan(warm));
  return matcher;
}

}  // namespace g4
