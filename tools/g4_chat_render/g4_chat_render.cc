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
#include "nlohmann/json.hpp"

namespace {

constexpr char kUsage[] = "usage: g4-chat-render --template FILE --request FILE.json";

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
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string* target = nullptr;
    std::string flag = arg, value;
    bool has_value = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      has_value = true;
    }
    if (flag == "--template") {
      target = &template_path;
    } else if (flag == "--request") {
      target = &request_path;
    } else {
      return Fail(2, "unknown argument '" + arg + "'; " + kUsage);
    }
    if (!has_value) {
      if (i + 1 >= argc) return Fail(2, "missing value for " + flag + "; " + kUsage);
      value = argv[++i];
    }
    if (!target->empty()) return Fail(2, "duplicate " + flag + "; " + kUsage);
    if (value.empty()) return Fail(2, "empty value for " + flag + "; " + kUsage);
    *target = value;
  }
  if (template_path.empty() || request_path.empty()) return Fail(2, kUsage);

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
