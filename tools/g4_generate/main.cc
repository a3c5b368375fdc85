// g4-generate: generation on the CPU reference backend (greedy unless sampling flags say
// otherwise). Contract (docs/cli.md): prints the generated text when the model has a tokenizer,
// then the generated ids as one JSON list on the last line of stdout; with --logits-out, one line
// {"logits":[...]} per generated position. Errors: one line on stderr, exit 2.
#include <cblas.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/chat_template/chat_template.h"
#include "common/checkpoint.h"
#include "common/flags/flag_set.h"
#include "common/status_macros.h"
#include "common/tokenizer/incremental_detokenizer.h"
#include "common/tokenizer/tokenizer.h"
#include "kernels/ops.h"
#include "nlohmann/json.hpp"
#include "tools/g4_generate/generate_options.h"
#include "tools/g4_generate/greedy_generator.h"
#include "tools/prompt_input/prompt_input.h"
#include "worker/model/gemma4_model.h"
#include "worker/sampling/stop_string_matcher.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "g4-generate: %s\n", std::string(status.message()).c_str());
  return 2;
}

// The prompt's token ids: as given, or tokenized text (with <bos>), or a chat turn rendered by
// the model's chat template (which emits <bos> itself).
absl::StatusOr<std::vector<int32_t>> PromptIds(const g4::GenerateOptions& o,
                                               const g4::Tokenizer* tokenizer) {
  if (!o.prompt_text && !o.chat_text) return o.prompt_tokens;
  if (tokenizer == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(o.model_dir, " has no tokenizer.json: use --prompt-tokens"));
  }
  if (o.prompt_text) return tokenizer->Encode(*o.prompt_text, /*add_special_tokens=*/true);
  absl::StatusOr<g4::ChatTemplate> tmpl =
      g4::ChatTemplate::LoadFile(o.model_dir + "/chat_template.jinja");
  if (!tmpl.ok()) return tmpl.status();
  nlohmann::ordered_json request = {
      {"messages", {{{"role", "user"}, {"content", *o.chat_text}}}},
      {"add_generation_prompt", true}};
  absl::StatusOr<std::string> prompt = tmpl->Render(request);
  if (!prompt.ok()) return prompt.status();
  return tokenizer->Encode(*prompt, /*add_special_tokens=*/false);
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<g4::GenerateOptions> options =
      g4::ParseGenerateOptions(absl::MakeConstSpan(argv + 1, argc - 1));
  if (!options.ok()) return g4::FlagError("g4-generate", options.status());
  if (options->help) return g4::PrintUsage(g4::GenerateUsage());
  if (options->threads > 0) openblas_set_num_threads(options->threads);
  if (!options->prompt_file.empty()) {  // read before loading anything: a bad path fails fast
    absl::StatusOr<std::string> text = g4::ReadPromptText(options->prompt_file);
    if (!text.ok()) return Fail(g4::Annotate(text.status(), "--prompt-file"));
    options->prompt_text = *std::move(text);
  }
  if (!options->prompt_tokens_file.empty()) {
    absl::StatusOr<std::vector<int32_t>> ids = g4::ReadPromptTokens(options->prompt_tokens_file);
    if (!ids.ok()) return Fail(g4::Annotate(ids.status(), "--prompt-tokens-file"));
    options->prompt_tokens = *std::move(ids);
  }

  absl::StatusOr<std::unique_ptr<g4::Checkpoint>> ckpt = g4::Checkpoint::Open(options->model_dir);
  if (!ckpt.ok()) return Fail(ckpt.status());
  absl::StatusOr<std::unique_ptr<g4::Gemma4Model>> model =
      g4::Gemma4Model::Load(options->model_dir, g4::CreateCpuOps());
  if (!model.ok()) return Fail(model.status());

  std::unique_ptr<g4::Tokenizer> tokenizer;
  const std::string tokenizer_path = options->model_dir + "/tokenizer.json";
  if (std::filesystem::exists(tokenizer_path)) {
    absl::StatusOr<std::unique_ptr<g4::Tokenizer>> t = g4::Tokenizer::LoadFromFile(tokenizer_path);
    if (!t.ok()) return Fail(t.status());
    tokenizer = std::move(*t);
  }
  absl::StatusOr<std::vector<int32_t>> prompt = PromptIds(*options, tokenizer.get());
  if (!prompt.ok()) return Fail(prompt.status());

  g4::SamplingRequest request = options->sampling;
  request.max_tokens = options->max_new_tokens;
  if (options->max_new_tokens == 0) {
    std::printf("[]\n");
    return 0;
  }
  absl::StatusOr<g4::SamplingParams> params = g4::ResolveSamplingParams(
      request, (*ckpt)->generation_config(), (*model)->config().vocab_size);
  if (!params.ok()) return Fail(params.status());
  if (!params->stop.empty() && tokenizer == nullptr) {
    return Fail(absl::FailedPreconditionError("--stop needs the model's tokenizer.json"));
  }

  std::FILE* logits_file = nullptr;
  if (!options->logits_out.empty()) {
    logits_file = std::fopen(options->logits_out.c_str(), "w");
    if (logits_file == nullptr) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--logits-out: cannot open \"", options->logits_out, "\" for writing")));
    }
  }
  auto sink = [&](int32_t, absl::Span<const float> logits) {
    if (logits_file == nullptr) return;
    std::fputs("{\"logits\":[", logits_file);
    for (size_t i = 0; i < logits.size(); ++i) {
      std::fprintf(logits_file, i == 0 ? "%.9g" : ",%.9g", logits[i]);
    }
    std::fputs("]}\n", logits_file);
  };

  // Text streams to stdout as tokens complete; stop strings end generation (not printed).
  std::unique_ptr<g4::IncrementalDetokenizer> detok;
  if (tokenizer != nullptr) {
    auto d = g4::IncrementalDetokenizer::Create(tokenizer.get());
    if (!d.ok()) return Fail(d.status());
    detok = std::move(*d);
  }
  g4::StopStringMatcher stops(params->stop);
  absl::Status text_error;
  auto on_token = [&](int32_t token) {
    if (detok == nullptr) return true;
    absl::StatusOr<std::string> piece = detok->Feed(token);
    if (!piece.ok()) {
      text_error = piece.status();
      return false;
    }
    g4::StopStringMatcher::Update u = stops.Append(*piece);
    std::fputs(u.text.c_str(), stdout);
    return !u.stopped;
  };
  absl::StatusOr<std::vector<int32_t>> tokens =
      g4::Generate(**model, *prompt, *params, sink, on_token);
  if (logits_file != nullptr && std::fclose(logits_file) != 0) {
    return Fail(absl::InternalError(absl::StrCat("--logits-out: writing \"", options->logits_out,
                                                 "\" failed")));
  }
  if (!tokens.ok()) return Fail(tokens.status());
  if (!text_error.ok()) return Fail(text_error);
  if (detok != nullptr) {
    std::fputs(stops.Append(detok->Flush()).text.c_str(), stdout);
    std::fputs(stops.Flush().c_str(), stdout);
    std::fputs("\n", stdout);
  }
  std::printf("[%s]\n", absl::StrJoin(*tokens, ",").c_str());
  return 0;
}
