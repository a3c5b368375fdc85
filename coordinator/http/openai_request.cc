#include "coordinator/http/openai_request.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/json_depth.h"
#include "common/status_macros.h"
#include "coordinator/http/openai_structured.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;
using Json = nlohmann::ordered_json;

absl::Status Bad(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

// Present and not null.
bool Has(const Json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && !it->is_null();
}

absl::StatusOr<double> GetNumber(const Json& body, const char* key) {
  const Json& v = body.at(key);
  if (!v.is_number()) return Bad(key, "expected a number");
  const double d = v.get<double>();
  if (!std::isfinite(d)) return Bad(key, "expected a finite number");
  return d;
}

absl::StatusOr<int64_t> GetInt(const Json& body, const char* key, int64_t min, int64_t max) {
  const Json& v = body.at(key);
  int64_t i = 0;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Bad(key, absl::StrCat("must be <= ", max));
    }
    i = v.get<int64_t>();
  } else if (v.is_number_float() && std::isfinite(v.get<double>()) &&
             v.get<double>() == std::floor(v.get<double>()) &&
             std::fabs(v.get<double>()) < 9e15) {
    i = static_cast<int64_t>(v.get<double>());
  } else {
    return Bad(key, "expected an integer");
  }
  if (i < min) return Bad(key, absl::StrCat("must be >= ", min, ", got ", i));
  if (i > max) return Bad(key, absl::StrCat("must be <= ", max, ", got ", i));
  return i;
}

absl::StatusOr<bool> GetBool(const Json& body, const char* key) {
  const Json& v = body.at(key);
  if (!v.is_boolean()) return Bad(key, "expected a boolean");
  return v.get<bool>();
}

absl::Status CheckKnownFields(const Json& body, const std::set<std::string>& allowed) {
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (allowed.count(it.key()) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Unrecognized request argument supplied: ", it.key()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> ParseBody(absl::string_view body) {
  // Before parsing: a deeply nested body would overflow the stack in any later recursive walk.
  G4_RETURN_IF_ERROR(CheckJsonTextDepth(body, "body"));
  Json json = Json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError("body: malformed JSON (expected a JSON object)");
  }
  if (!json.is_object()) return absl::InvalidArgumentError("body: expected a JSON object");
  return json;
}

// Fields common to both endpoints: model, sampling, stopping, n, stream, stream_options, user.
absl::Status ParseCommon(const Json& body, OpenAiRequest* out) {
  pb::GenerateRequest& g = out->generate;
  if (Has(body, "model")) {
    if (!body["model"].is_string()) return Bad("model", "expected a string");
    out->model = body["model"].get<std::string>();
    g.set_model(out->model);
  }
  pb::SamplingParameters* s = g.mutable_sampling();
  pb::StoppingCriteria* st = g.mutable_stopping();
  if (Has(body, "temperature")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "temperature"));
    s->set_temperature(static_cast<float>(v));
  }
  if (Has(body, "top_p")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "top_p"));
    s->set_top_p(static_cast<float>(v));
  }
  if (Has(body, "top_k")) {
    // vLLM: -1 disables top-k as 0 does.
    G4_ASSIGN_OR_RETURN(int64_t v, GetInt(body, "top_k", -1, std::numeric_limits<int32_t>::max()));
    s->set_top_k(v < 0 ? 0 : static_cast<int32_t>(v));
  }
  if (Has(body, "min_p")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "min_p"));
    s->set_min_p(static_cast<float>(v));
  }
  if (Has(body, "repetition_penalty")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "repetition_penalty"));
    s->set_repetition_penalty(static_cast<float>(v));
  }
  if (Has(body, "presence_penalty")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "presence_penalty"));
    s->set_presence_penalty(static_cast<float>(v));
  }
  if (Has(body, "frequency_penalty")) {
    G4_ASSIGN_OR_RETURN(double v, GetNumber(body, "frequency_penalty"));
    s->set_frequency_penalty(static_cast<float>(v));
  }
  if (Has(body, "seed")) {
    G4_ASSIGN_OR_RETURN(int64_t v, GetInt(body, "seed", 0, std::numeric_limits<int64_t>::max()));
    s->set_seed(static_cast<uint64_t>(v));
  }
  if (Has(body, "n")) {
    G4_ASSIGN_OR_RETURN(int64_t v, GetInt(body, "n", 1, std::numeric_limits<int32_t>::max()));
    if (v != 1) return Bad("n", absl::StrCat("only n=1 is supported, got ", v));
  }
  if (Has(body, "best_of")) {
    G4_ASSIGN_OR_RETURN(int64_t v,
                        GetInt(body, "best_of", 1, std::numeric_limits<int32_t>::max()));
    if (v != 1) return Bad("best_of", absl::StrCat("only best_of=1 is supported, got ", v));
  }
  if (Has(body, "logit_bias")) {
    if (!body["logit_bias"].is_object()) return Bad("logit_bias", "expected an object");
    if (!body["logit_bias"].empty()) return Bad("logit_bias", "not supported");
  }
  if (Has(body, "stop")) {
    const Json& stop = body["stop"];
    if (stop.is_string()) {
      st->add_stop(stop.get<std::string>());
    } else if (stop.is_array()) {
      for (size_t i = 0; i < stop.size(); ++i) {
        if (!stop[i].is_string()) return Bad(absl::StrCat("stop[", i, "]"), "expected a string");
        st->add_stop(stop[i].get<std::string>());
      }
    } else {
      return Bad("stop", "expected a string or an array of strings");
    }
  }
  if (Has(body, "stop_token_ids")) {
    const Json& ids = body["stop_token_ids"];
    if (!ids.is_array()) return Bad("stop_token_ids", "expected an array of integers");
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_integer() || ids[i].get<int64_t>() < 0 ||
          ids[i].get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return Bad(absl::StrCat("stop_token_ids[", i, "]"), "expected a token id");
      }
      st->add_stop_token_ids(static_cast<int32_t>(ids[i].get<int64_t>()));
    }
  }
  if (Has(body, "ignore_eos")) {
    G4_ASSIGN_OR_RETURN(bool v, GetBool(body, "ignore_eos"));
    st->set_ignore_eos(v);
  }
  if (Has(body, "priority")) {
    G4_ASSIGN_OR_RETURN(int64_t v, GetInt(body, "priority", std::numeric_limits<int32_t>::min(),
                                          std::numeric_limits<int32_t>::max()));
    g.set_priority(static_cast<int32_t>(v));
  }
  if (Has(body, "stream")) {
    G4_ASSIGN_OR_RETURN(out->stream, GetBool(body, "stream"));
  }
  if (Has(body, "stream_options")) {
    const Json& so = body["stream_options"];
    if (!so.is_object()) return Bad("stream_options", "expected an object");
    for (auto it = so.begin(); it != so.end(); ++it) {
      if (it.key() == "include_usage") {
        if (it->is_null()) continue;
        if (!it->is_boolean()) return Bad("stream_options.include_usage", "expected a boolean");
        out->include_usage = it->get<bool>();
      } else if (it.key() != "continuous_usage_stats") {
        return Bad(absl::StrCat("stream_options.", it.key()), "unrecognized argument");
      }
    }
    if (!out->stream) return Bad("stream_options", "only allowed when stream is true");
  }
  if (Has(body, "user") && !body["user"].is_string()) return Bad("user", "expected a string");
  return absl::OkStatus();
}

// max_tokens (and chat's max_completion_tokens). OpenAI: >= 1.
absl::Status ParseMaxTokens(const Json& body, const char* key, OpenAiRequest* out) {
  if (!Has(body, key)) return absl::OkStatus();
  const Json& v = body.at(key);
  if (!v.is_number_integer()) return Bad(key, "expected an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > std::numeric_limits<int32_t>::max()) {
    return Bad(key, absl::StrCat("must be <= ", std::numeric_limits<int32_t>::max()));
  }
  const int64_t n = v.get<int64_t>();
  if (n < 1) return Bad(key, absl::StrCat("must be >= 1, got ", n));
  if (n > std::numeric_limits<int32_t>::max()) {
    return Bad(key, absl::StrCat("must be <= ", std::numeric_limits<int32_t>::max()));
  }
  out->generate.mutable_stopping()->set_max_tokens(static_cast<int32_t>(n));
  return absl::OkStatus();
}

absl::Status ParseTokenArray(const Json& array, const std::string& field, pb::TokenIds* out) {
  for (size_t i = 0; i < array.size(); ++i) {
    const Json& t = array[i];
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
      return Bad(absl::StrCat(field, "[", i, "]"), "expected a token id (a non-negative integer)");
    }
    out->add_ids(static_cast<int32_t>(t.get<int64_t>()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(absl::string_view text) {
  static const std::set<std::string> kAllowed = {
      "model", "prompt", "suffix", "max_tokens", "temperature", "top_p", "n", "stream",
      "stream_options", "logprobs", "echo", "stop", "presence_penalty", "frequency_penalty",
      "best_of", "logit_bias", "seed", "user",
      // vLLM extensions
      "top_k", "min_p", "repetition_penalty", "ignore_eos", "stop_token_ids", "priority"};
  G4_ASSIGN_OR_RETURN(Json body, ParseBody(text));
  G4_RETURN_IF_ERROR(CheckKnownFields(body, kAllowed));
  OpenAiRequest out;
  out.chat = false;
  G4_RETURN_IF_ERROR(ParseCommon(body, &out));
  if (!Has(body, "prompt")) return Bad("prompt", "required");
  const Json& prompt = body["prompt"];
  if (prompt.is_string()) {
    out.generate.set_text(prompt.get<std::string>());
  } else if (prompt.is_array()) {
    if (prompt.empty()) return Bad("prompt", "must not be empty");
    if (prompt[0].is_number()) {
      G4_RETURN_IF_ERROR(ParseTokenArray(prompt, "prompt", out.generate.mutable_token_ids()));
    } else if (prompt.size() > 1) {
      return Bad("prompt", "batches of prompts are not supported; send one prompt per request");
    } else if (prompt[0].is_string()) {
      out.generate.set_text(prompt[0].get<std::string>());
    } else if (prompt[0].is_array()) {
      G4_RETURN_IF_ERROR(
          ParseTokenArray(prompt[0], "prompt[0]", out.generate.mutable_token_ids()));
    } else {
      return Bad("prompt[0]", "expected a string or an array of token ids");
    }
  } else {
    return Bad("prompt", "expected a string, an array of token ids or an array of one string");
  }
  if (Has(body, "suffix")) {
    if (!body["suffix"].is_string()) return Bad("suffix", "expected a string");
    if (!body["suffix"].get<std::string>().empty()) return Bad("suffix", "not supported");
  }
  if (Has(body, "echo")) {
    G4_ASSIGN_OR_RETURN(bool echo, GetBool(body, "echo"));
    if (echo) return Bad("echo", "echo=true is not supported");
  }
  if (Has(body, "logprobs")) {
    G4_ASSIGN_OR_RETURN(int64_t n, GetInt(body, "logprobs", 0, 20));
    out.logprobs = true;
    out.top_logprobs = static_cast<int>(n);
    out.generate.mutable_sampling()->set_logprobs(static_cast<int32_t>(n));
  }
  G4_RETURN_IF_ERROR(ParseMaxTokens(body, "max_tokens", &out));
  if (!out.generate.stopping().has_max_tokens()) {
    out.generate.mutable_stopping()->set_max_tokens(kDefaultCompletionMaxTokens);
  }
  return out;
}

absl::StatusOr<OpenAiRequest> ParseChatRequest(absl::string_view text) {
  static const std::set<std::string> kAllowed = {
      "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n",
      "stream", "stream_options", "stop", "seed", "presence_penalty", "frequency_penalty",
      "logit_bias", "logprobs", "top_logprobs", "tools", "tool_choice", "parallel_tool_calls",
      "user", "metadata", "store", "response_format",
      // vLLM extensions
      "top_k", "min_p", "repetition_penalty", "ignore_eos", "stop_token_ids", "priority",
      "chat_template_kwargs", "add_generation_prompt"};
  G4_ASSIGN_OR_RETURN(Json body, ParseBody(text));
  G4_RETURN_IF_ERROR(CheckKnownFields(body, kAllowed));
  OpenAiRequest out;
  out.chat = true;
  G4_RETURN_IF_ERROR(ParseCommon(body, &out));
  if (!Has(body, "messages")) return Bad("messages", "required");
  if (!body["messages"].is_array() || body["messages"].empty()) {
    return Bad("messages", "expected a non-empty array of messages");
  }
  for (size_t i = 0; i < body["messages"].size(); ++i) {
    const Json& m = body["messages"][i];
    if (!m.is_object()) return Bad(absl::StrCat("messages[", i, "]"), "expected an object");
    if (!m.contains("role") || !m["role"].is_string()) {
      return Bad(absl::StrCat("messages[", i, "].role"), "required (a string)");
    }
    static const std::set<std::string> kRoles = {"system", "developer", "user", "assistant",
                                                 "tool"};
    if (kRoles.count(m["role"].get<std::string>()) == 0) {
      return Bad(absl::StrCat("messages[", i, "].role"),
                 absl::StrCat("unknown role '", m["role"].get<std::string>(),
                              "' (system, developer, user, assistant or tool)"));
    }
  }
  Json& chat = out.chat_request;
  chat = Json::object();
  chat["messages"] = body["messages"];
  // tool_choice "none" leaves the tools out of the prompt; the forcing values are structured
  // outputs (openai_structured.cc, which also checks the field).
  const bool tools_enabled = !(Has(body, "tool_choice") && body["tool_choice"] == "none");
  if (Has(body, "tools")) {
    const Json& tools = body["tools"];
    if (!tools.is_array()) return Bad("tools", "expected an array");
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string field = absl::StrCat("tools[", i, "]");
      const Json& t = tools[i];
      if (!t.is_object()) return Bad(field, "expected an object");
      if (!t.contains("type") || t["type"] != "function") {
        return Bad(field + ".type", "must be \"function\"");
      }
      if (!t.contains("function") || !t["function"].is_object()) {
        return Bad(field + ".function", "required (an object)");
      }
      const Json& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty()) {
        return Bad(field + ".function.name", "required (a non-empty string)");
      }
      if (f.contains("parameters") && !f["parameters"].is_null() &&
          !f["parameters"].is_object()) {
        return Bad(field + ".function.parameters", "expected a JSON Schema object");
      }
    }
    if (tools_enabled && !tools.empty()) chat["tools"] = tools;
  }
  if (Has(body, "parallel_tool_calls") && !body["parallel_tool_calls"].is_boolean()) {
    return Bad("parallel_tool_calls", "expected a boolean");
  }
  if (Has(body, "metadata") && !body["metadata"].is_object()) {
    return Bad("metadata", "expected an object");
  }
  if (Has(body, "store") && !body["store"].is_boolean()) return Bad("store", "expected a boolean");
  G4_RETURN_IF_ERROR(ParseStructuredOutputs(body, &out.generate));
  if (Has(body, "chat_template_kwargs")) {
    const Json& kw = body["chat_template_kwargs"];
    if (!kw.is_object()) return Bad("chat_template_kwargs", "expected an object");
    for (auto it = kw.begin(); it != kw.end(); ++it) {
      if (it.key() == "enable_thinking") {
        if (!it->is_boolean()) {
          return Bad("chat_template_kwargs.enable_thinking", "expected a boolean");
        }
        chat["enable_thinking"] = it->get<bool>();
      } else {
        return Bad(absl::StrCat("chat_template_kwargs.", it.key()),
                   "unsupported (only enable_thinking)");
      }
    }
  }
  chat["add_generation_prompt"] = true;
  if (Has(body, "add_generation_prompt")) {
    G4_ASSIGN_OR_RETURN(bool v, GetBool(body, "add_generation_prompt"));
    chat["add_generation_prompt"] = v;
  }
  if (Has(body, "logprobs")) {
    G4_ASSIGN_OR_RETURN(out.logprobs, GetBool(body, "logprobs"));
  }
  if (Has(body, "top_logprobs")) {
    G4_ASSIGN_OR_RETURN(int64_t n, GetInt(body, "top_logprobs", 0, 20));
    if (!out.logprobs) return Bad("top_logprobs", "requires logprobs to be true");
    out.top_logprobs = static_cast<int>(n);
  }
  if (out.logprobs) out.generate.mutable_sampling()->set_logprobs(out.top_logprobs);
  if (Has(body, "max_tokens") && Has(body, "max_completion_tokens")) {
    return Bad("max_completion_tokens", "give max_tokens or max_completion_tokens, not both");
  }
  G4_RETURN_IF_ERROR(ParseMaxTokens(body, "max_tokens", &out));
  G4_RETURN_IF_ERROR(ParseMaxTokens(body, "max_completion_tokens", &out));
  return out;
}

}  // namespace g4
