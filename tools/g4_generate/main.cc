// g4-generate: greedy generation on the CPU reference backend.
//   g4-generate --model DIR --prompt-tokens 2,651,1234 --max-new-tokens N [--logits-out FILE]
// Prints the generated ids as one JSON list on the last line of stdout; with --logits-out,
// writes one line {"logits":[...]} per generated position. Errors: one line on stderr, exit 2.
#include <cblas.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/ops.h"
#include "tools/g4_generate/generate_options.h"
#include "tools/g4_generate/greedy_generator.h"
#include "worker/model/gemma4_model.h"

namespace {

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "g4-generate: %s\n", std::string(status.message()).c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<g4::GenerateOptions> options =
      g4::ParseGenerateOptions(absl::MakeConstSpan(argv + 1, argc - 1));
  if (!options.ok()) {
    std::fprintf(stderr, "g4-generate: %s (%s)\n", std::string(options.status().message()).c_str(),
                 g4::kGenerateUsage);
    return 2;
  }
  if (options->threads > 0) openblas_set_num_threads(options->threads);

  absl::StatusOr<std::unique_ptr<g4::Gemma4Model>> model =
      g4::Gemma4Model::Load(options->model_dir, g4::CreateCpuOps());
  if (!model.ok()) return Fail(model.status());

  std::FILE* logits_file = nullptr;
  if (!options->logits_out.empty()) {
    logits_file = std::fopen(options->logits_out.c_str(), "w");
    if (logits_file == nullptr) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat("--logits-out: cannot open \"", options->logits_out, "\" for writing")));
    }
  }
  g4::GreedyOptions greedy;
  greedy.max_new_tokens = options->max_new_tokens;
  if (!options->ignore_eos) greedy.stop_token_ids = (*model)->stop_token_ids();
  auto sink = [&](int32_t, absl::Span<const float> logits) {
    if (logits_file == nullptr) return;
    std::fputs("{\"logits\":[", logits_file);
    for (size_t i = 0; i < logits.size(); ++i) {
      std::fprintf(logits_file, i == 0 ? "%.9g" : ",%.9g", logits[i]);
    }
    std::fputs("]}\n", logits_file);
  };
  absl::StatusOr<std::vector<int32_t>> tokens =
      g4::GenerateGreedy(**model, options->prompt_tokens, greedy, sink);
  if (logits_file != nullptr && std::fclose(logits_file) != 0) {
    return Fail(absl::InternalError(absl::StrCat("--logits-out: writing \"", options->logits_out,
                                                 "\" failed")));
  }
  if (!tokens.ok()) return Fail(tokens.status());
  std::printf("[%s]\n", absl::StrJoin(*tokens, ",").c_str());
  return 0;
}
