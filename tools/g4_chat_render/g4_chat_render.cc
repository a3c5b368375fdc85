// g4-chat-render --template FILE --request FILE.json
//
// Renders a chat request ({messages, tools?, enable_thinking?, add_generation_prompt?}) with a
// chat_template.jinja and prints exactly the prompt (no added newline). Bad flags, unreadable
// files, unparsable JSON or a template syntax error: one line on stderr, exit 2. An invalid
// request or a template runtime error: one line on stderr, exit 1.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/chat_template/chat_template.h"
#include "common/flags/flag_set.h"
#include "nlohmann/json.hpp"

namespace {

int Fail(int code, const std::string& msg) {
  std::string line = msg;
  for (char& c : line) {
    if (c == '\n') c = ' ';
  }
  std::fprintf(stderr, "g4-chat-render: %s\n", line.c_str());
  return code;
}

bool ReadFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  std::string template_path, request_path;
  g4::FlagSet flags("g4-chat-render", "--template FILE --request FILE.json",
                    "Renders a chat request ({messages, tools?, enable_thinking?, "
                    "add_generation_prompt?}) with a chat_template.jinja and prints exactly the "
                    "prompt. Exit 2 on bad flags, unreadable files, bad JSON or a template syntax "
                    "error; 1 on an invalid request or a template runtime error.");
  flags.RejectDuplicates();
  flags.Add("template", &template_path, "the chat_template.jinja")
      .Value("FILE")
      .Required()
      .NonEmpty();
  flags.Add("request", &request_path, "the request as a JSON object")
      .Value("FILE.json")
      .Required()
      .NonEmpty();
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) return g4::FlagError("g4-chat-render", s);
  if (flags.help()) return g4::PrintUsage(flags.Usage());

  std::string template_text, request_text;
  if (!ReadFile(template_path, template_text)) {
    return Fail(2, "cannot read template file '" + template_path + "'");
  }
  if (!ReadFile(request_path, request_text)) {
    return Fail(2, "cannot read request file '" + request_path + "'");
  }
  nlohmann::ordered_json request = nlohmann::ordered_json::parse(request_text, nullptr, false);
  if (request.is_discarded()) return Fail(2, "request file '" + request_path + "' is not valid JSON");
  if (!request.is_object()) {
    return Fail(2, "request file '" + request_path + "' must hold a JSON object");
  }
  auto tmpl = g4::ChatTemplate::Load(template_text);
  if (!tmpl.ok()) return Fail(2, std::string(tmpl.status().message()));
  auto rendered = tmpl->Render(request);
  if (!rendered.ok()) return Fail(1, std::string(rendered.status().message()));
  std::fwrite(rendered->data(), 1, rendered->size(), stdout);
  std::fflush(stdout);
  return 0;
}
