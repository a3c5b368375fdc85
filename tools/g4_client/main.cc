// g4-client: sends one request to a g4serve coordinator through the public gRPC API
// (g4serve.v1.Inference/Generate) and prints the streamed text as it arrives.
//
//   g4-client --server HOST:PORT (--prompt TEXT | --prompt-tokens 2,17,99 | --chat TEXT |
//             --prompt-file PATH | --prompt-tokens-file PATH) [--max-tokens N] [--temperature T] [--seed S] [--timeout 60s] [--print-tokens]
//
// --prompt-file / --prompt-tokens-file read the prompt (text / ids) from a file, `-` from standard
// input (tools/prompt_input). --chat wraps TEXT as one user message (the server applies the model's chat template).
// Errors: one stderr line; exit 2 for bad flags, 1 for a failed RPC. `g4-client --help`.
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/flags/flag_set.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/prompt_input/prompt_input.h"

namespace {

struct ClientOptions {
  std::string server;
  std::optional<std::string> prompt, prompt_tokens, chat, prompt_file, prompt_tokens_file;
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  std::optional<uint64_t> seed;
  absl::Duration timeout = absl::Seconds(60);
  bool print_tokens = false;
};

void DeclareFlags(g4::FlagSet& flags, ClientOptions& o) {
  flags.Add("server", &o.server, "the coordinator's gRPC address").Value("HOST:PORT").Required();
  flags.Add("prompt", &o.prompt, "a text prompt (tokenized by the server, no <bos> added)")
      .Value("TEXT");
  flags.Add("prompt-tokens", &o.prompt_tokens, "comma-separated token ids").Value("IDS");
  flags.Add("prompt-file", &o.prompt_file, "a text prompt read from this file (- for stdin)")
      .Value("PATH");
  flags.Add("prompt-tokens-file", &o.prompt_tokens_file,
            "token ids read from this file (- for stdin): a JSON list or ids separated by commas "
            "or whitespace")
      .Value("PATH");
  flags.Add("chat", &o.chat, "one user message; the server applies the model's chat template")
      .Value("TEXT");
  flags.Add("max-tokens", &o.max_tokens, "generate at most N tokens")
      .Min(0)
      .Default("the server's");
  flags.Add("temperature", &o.temperature, "sampling temperature")
      .Value("T")
      .Default("the model's generation_config.json");
  flags.Add("seed", &o.seed, "sampling seed").Value("S").Default("random");
  flags.Add("timeout", &o.timeout, "deadline of the request").MinExclusive(absl::ZeroDuration());
  flags.Add("print-tokens", &o.print_tokens, "also print the generated ids (\"tokens: [...]\")");
}

constexpr char kSynopsis[] =
    "--server HOST:PORT (--prompt TEXT | --prompt-tokens IDS | --chat TEXT | --prompt-file PATH "
    "| --prompt-tokens-file PATH) [flags]";
constexpr char kDescription[] =
    "Sends one request to a g4serve coordinator (g4serve.v1.Inference/Generate) and prints the "
    "streamed text as it arrives; the finish reason and usage go to stderr. Exit 1 when the RPC "
    "fails.";

}  // namespace

int main(int argc, char** argv) {
  ClientOptions o;
  g4::FlagSet flags("g4-client", kSynopsis, kDescription);
  DeclareFlags(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return g4::FlagError("g4-client", s);
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  if (o.prompt.has_value() + o.prompt_tokens.has_value() + o.chat.has_value() +
          o.prompt_file.has_value() + o.prompt_tokens_file.has_value() !=
      1) {
    return g4::FlagError("g4-client", absl::InvalidArgumentError(
                                          "give exactly one of --prompt, --prompt-tokens, --chat, "
                                          "--prompt-file, --prompt-tokens-file"));
  }
  g4serve::v1::GenerateRequest request;
  if (o.prompt) request.set_text(*o.prompt);
  if (o.chat) {
    nlohmann::json chat = {{"messages", {{{"role", "user"}, {"content", *o.chat}}}}};
    request.set_chat_json(chat.dump());
  }
  if (o.prompt_file) {
    absl::StatusOr<std::string> text = g4::ReadPromptText(*o.prompt_file);
    if (!text.ok()) {
      return g4::FlagError("g4-client", absl::InvalidArgumentError(absl::StrCat(
                                            "--prompt-file: ", text.status().message())));
    }
    request.set_text(*std::move(text));
  }
  if (o.prompt_tokens_file) {
    absl::StatusOr<std::vector<int32_t>> ids = g4::ReadPromptTokens(*o.prompt_tokens_file);
    if (!ids.ok()) {
      return g4::FlagError("g4-client", absl::InvalidArgumentError(absl::StrCat(
                                            "--prompt-tokens-file: ", ids.status().message())));
    }
    request.mutable_token_ids()->mutable_ids()->Add(ids->begin(), ids->end());
  }
  if (o.prompt_tokens) {
    for (absl::string_view p : absl::StrSplit(*o.prompt_tokens, ',')) {
      int id;
      if (!absl::SimpleAtoi(p, &id)) {
        return g4::FlagError("g4-client", absl::InvalidArgumentError(absl::StrCat(
                                              "--prompt-tokens: bad id \"", p, "\"")));
      }
      request.mutable_token_ids()->add_ids(id);
    }
  }
  if (o.max_tokens) request.mutable_stopping()->set_max_tokens(*o.max_tokens);
  if (o.temperature) {
    request.mutable_sampling()->set_temperature(static_cast<float>(*o.temperature));
  }
  if (o.seed) request.mutable_sampling()->set_seed(*o.seed);
  const absl::Duration timeout = o.timeout;
  const bool print_tokens = o.print_tokens;
  std::string server = o.server;

  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto stub = g4serve::v1::Inference::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  auto reader = stub->Generate(&context, request);
  g4serve::v1::GenerateResponse response;
  std::string finish = "none";
  g4serve::v1::Usage usage;
  std::vector<int> ids;
  while (reader->Read(&response)) {
    std::fputs(response.text().c_str(), stdout);
    std::fflush(stdout);
    for (const auto& t : response.tokens()) ids.push_back(t.token_id());
    if (response.finish_reason() != g4serve::v1::FINISH_REASON_UNSPECIFIED) {
      finish = g4serve::v1::FinishReason_Name(response.finish_reason());
      usage = response.usage();
    }
  }
  const grpc::Status status = reader->Finish();
  std::fputs("\n", stdout);
  std::fflush(stdout);  // before anything on stderr
  if (!status.ok()) {
    std::fprintf(stderr, "g4-client: %s: %s\n",
                 absl::StrCat("rpc failed (code ", status.error_code(), ")").c_str(),
                 status.error_message().c_str());
    return 1;
  }
  if (print_tokens) std::printf("tokens: [%s]\n", absl::StrJoin(ids, ",").c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "finish: %s, prompt tokens %d, completion tokens %d\n", finish.c_str(),
               usage.prompt_tokens(), usage.completion_tokens());
  return 0;
}
