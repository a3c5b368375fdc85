// g4-client: sends one request to a g4serve coordinator through the public gRPC API
// (g4serve.v1.Inference/Generate) and prints the streamed text as it arrives.
//
//   g4-client --server HOST:PORT (--prompt TEXT | --prompt-tokens 2,17,99 | --chat TEXT |
//             --prompt-file PATH | --prompt-tokens-file PATH) [--max-tokens N] [--temperature T] [--seed S] [--timeout 60s] [--print-tokens]
//
// --prompt-file / --prompt-tokens-file read the prompt (text / ids) from a file, `-` from standard
// input (tools/prompt_input). --chat wraps TEXT as one user message (the server applies the model's chat template).
// Errors: one stderr line; exit 2 for bad flags, 1 for a failed RPC.
#include <cstdio>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "g4serve/v1/inference.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "tools/prompt_input/prompt_input.h"

namespace {

int Usage(const std::string& what) {
  std::fprintf(stderr,
               "g4-client: %s (usage: g4-client --server HOST:PORT (--prompt TEXT | "
               "--prompt-tokens IDS | --chat TEXT | --prompt-file PATH | --prompt-tokens-file PATH) "
               "[--max-tokens N] [--temperature T] [--seed S] "
               "[--timeout DURATION] [--print-tokens])\n",
               what.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server;
  g4serve::v1::GenerateRequest request;
  absl::Duration timeout = absl::Seconds(60);
  bool print_tokens = false;
  int prompts = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--print-tokens") {
      print_tokens = true;
      continue;
    }
    if (i + 1 >= argc) return Usage(absl::StrCat(flag, " needs a value"));
    const std::string value = argv[++i];
    if (flag == "--server") {
      server = value;
    } else if (flag == "--prompt") {
      request.set_text(value);
      ++prompts;
    } else if (flag == "--chat") {
      nlohmann::json chat = {{"messages", {{{"role", "user"}, {"content", value}}}}};
      request.set_chat_json(chat.dump());
      ++prompts;
    } else if (flag == "--prompt-file") {  // `-`: standard input
      absl::StatusOr<std::string> text = g4::ReadPromptText(value);
      if (!text.ok()) return Usage(absl::StrCat("--prompt-file: ", text.status().message()));
      request.set_text(*std::move(text));
      ++prompts;
    } else if (flag == "--prompt-tokens-file") {
      absl::StatusOr<std::vector<int32_t>> ids = g4::ReadPromptTokens(value);
      if (!ids.ok()) return Usage(absl::StrCat("--prompt-tokens-file: ", ids.status().message()));
      request.mutable_token_ids()->mutable_ids()->Add(ids->begin(), ids->end());
      ++prompts;
    } else if (flag == "--prompt-tokens") {
      for (absl::string_view p : absl::StrSplit(value, ',')) {
        int id;
        if (!absl::SimpleAtoi(p, &id)) return Usage(absl::StrCat("--prompt-tokens: bad id \"", p, "\""));
        request.mutable_token_ids()->add_ids(id);
      }
      ++prompts;
    } else if (flag == "--max-tokens") {
      int n;
      if (!absl::SimpleAtoi(value, &n)) return Usage("--max-tokens: not an integer");
      request.mutable_stopping()->set_max_tokens(n);
    } else if (flag == "--temperature") {
      float t;
      if (!absl::SimpleAtof(value, &t)) return Usage("--temperature: not a number");
      request.mutable_sampling()->set_temperature(t);
    } else if (flag == "--seed") {
      uint64_t s;
      if (!absl::SimpleAtoi(value, &s)) return Usage("--seed: not an integer");
      request.mutable_sampling()->set_seed(s);
    } else if (flag == "--timeout") {
      if (!absl::ParseDuration(value, &timeout)) return Usage("--timeout: not a duration (e.g. 30s)");
    } else {
      return Usage(absl::StrCat("unknown flag \"", flag, "\""));
    }
  }
  if (server.empty()) return Usage("--server is required");
  if (prompts != 1) {
    return Usage(
        "give exactly one of --prompt, --prompt-tokens, --chat, --prompt-file, "
        "--prompt-tokens-file");
  }

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
