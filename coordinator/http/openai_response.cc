#include "coordinator/http/openai_response.h"

#include <cctype>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;
using Json = nlohmann::ordered_json;

Json Bytes(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// JSON text with invalid UTF-8 replaced (token texts may be partial UTF-8 sequences).
std::string Dump(const Json& json) {
  return json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorParam(absl::string_view message) {
  constexpr absl::string_view kUnrecognized = "Unrecognized request argument supplied: ";
  if (absl::StartsWith(message, kUnrecognized)) {
    return std::string(message.substr(kUnrecognized.size()));
  }
  size_t i = 0;
  while (i < message.size() &&
         (std::isalnum(static_cast<unsigned char>(message[i])) || message[i] == '_' ||
          message[i] == '.' || message[i] == '[' || message[i] == ']')) {
    ++i;
  }
  if (i == 0 || i >= message.size()) return "";
  const absl::string_view name = message.substr(0, i);
  const absl::string_view rest = message.substr(i);
  // "field: ..." or "field must ..." (the sampler's wording).
  if (absl::StartsWith(rest, ":") || absl::StartsWith(rest, " must")) {
    // Lower-case identifiers only: "Unrecognized ..." / "model 'x' not found" are not fields.
    if (!std::islower(static_cast<unsigned char>(name[0]))) return "";
    return std::string(name);
  }
  return "";
}

Json ErrorBody(const absl::Status& status) {
  const int http = HttpStatusFor(status.code());
  std::string type = "server_error";
  Json code = nullptr;
  if (http == 400 || http == 404 || http == 409 || http == 413) type = "invalid_request_error";
  if (http == 429) type = "rate_limit_error";
  if (http == 503) type = "service_unavailable";
  if (http == 504) type = "timeout";
  if (http == 499) type = "cancelled";
  if (http == 401) type = "invalid_request_error";  // OpenAI's, with code invalid_api_key
  if (http == 401) code = "invalid_api_key";
  if (status.code() == absl::StatusCode::kNotFound) code = "model_not_found";
  if (absl::StartsWith(status.message(), "Unrecognized request argument")) {
    code = "unknown_parameter";
  }
  const std::string param = ErrorParam(status.message());
  Json error = {{"message", std::string(status.message())},
                {"type", type},
                {"param", param.empty() ? Json(nullptr) : Json(param)},
                {"code", code}};
  return Json{{"error", error}};
}

OpenAiResponder::OpenAiResponder(ResponseOptions options)
    : options_(std::move(options)), parser_([&] {
        OutputParserOptions o;
        o.start = options_.output_start;
        const std::string id = options_.id;
        o.tool_call_id = [id](int n) { return absl::StrCat("call_", id, "_", n); };
        return o;
      }()) {
  logprobs_ = options_.chat ? Json{{"content", Json::array()}, {"refusal", nullptr}}
                            : Json{{"tokens", Json::array()},
                                   {"token_logprobs", Json::array()},
                                   {"top_logprobs", Json::array()},
                                   {"text_offset", Json::array()}};
}

std::string OpenAiResponder::Event(const Json& json) {
  return absl::StrCat("data: ", Dump(json), "\n\n");
}

Json OpenAiResponder::Envelope() const {
  return Json{{"id", options_.id},
              {"object", options_.chat ? "chat.completion.chunk" : "text_completion"},
              {"created", options_.created},
              {"model", options_.model}};
}

Json OpenAiResponder::UsageJson() const {
  const int prompt = usage_.prompt_tokens();
  const int completion = usage_.completion_tokens();
  return Json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion},
              {"prompt_tokens_details", {{"cached_tokens", usage_.cached_prompt_tokens()}}}};
}

std::string OpenAiResponder::FinishReason(pb::FinishReason reason, bool tool_calls) const {
  switch (reason) {
    case pb::FINISH_REASON_LENGTH:
      return "length";
    case pb::FINISH_REASON_STOP:
      return tool_calls ? "tool_calls" : "stop";
    case pb::FINISH_REASON_ABORTED:
      // Not in OpenAI's set, but the truth (vLLM's word for it); openai-python passes it on.
      return "abort";
    default:
      return "unknown";
  }
}

Json OpenAiResponder::LogprobsJson(const pb::GenerateResponse& response) const {
  auto text_of = [this](int32_t id, const std::string& given) {
    if (!given.empty() || options_.codec == nullptr) return given;
    return options_.codec->TokenText(id);
  };
  if (options_.chat) {
    Json content = Json::array();
    for (const pb::TokenOutput& t : response.tokens()) {
      const std::string token = text_of(t.token_id(), "");
      Json top = Json::array();
      for (const pb::TokenLogprob& alt : t.top_logprobs()) {
        const std::string s = text_of(alt.token_id(), alt.token());
        top.push_back({{"token", s}, {"logprob", alt.logprob()}, {"bytes", Bytes(s)}});
      }
      content.push_back(
          {{"token", token}, {"logprob", t.logprob()}, {"bytes", Bytes(token)}, {"top_logprobs", top}});
    }
    return Json{{"content", content}, {"refusal", nullptr}};
  }
  Json out = {{"tokens", Json::array()},
              {"token_logprobs", Json::array()},
              {"top_logprobs", Json::array()},
              {"text_offset", Json::array()}};
  int offset = static_cast<int>(text_.size());
  for (const pb::TokenOutput& t : response.tokens()) {
    const std::string token = text_of(t.token_id(), "");
    out["tokens"].push_back(token);
    out["token_logprobs"].push_back(t.logprob());
    Json top = Json::object();
    for (const pb::TokenLogprob& alt : t.top_logprobs()) {
      top[text_of(alt.token_id(), alt.token())] = alt.logprob();
    }
    out["top_logprobs"].push_back(top);
    out["text_offset"].push_back(offset);
    offset += static_cast<int>(token.size());
  }
  return out;
}

Json OpenAiResponder::ChatDelta(const OutputDelta& delta) {
  Json d = Json::object();
  if (!delta.reasoning.empty()) {
    d["reasoning"] = delta.reasoning;
    d["reasoning_content"] = delta.reasoning;
  }
  if (!delta.content.empty()) d["content"] = delta.content;
  if (!delta.tool_calls.empty()) {
    Json calls = Json::array();
    for (const ToolCall& call : delta.tool_calls) {
      calls.push_back({{"index", tool_calls_++},
                       {"id", call.id},
                       {"type", "function"},
                       {"function", {{"name", call.name}, {"arguments", call.arguments_json}}}});
    }
    d["tool_calls"] = calls;
  }
  return d;
}

std::vector<std::string> OpenAiResponder::StreamEvents(const pb::GenerateResponse& response) {
  std::vector<std::string> events;
  auto chunk = [&](Json choice) {
    Json c = Envelope();
    c["choices"] = Json::array({std::move(choice)});
    if (options_.include_usage) c["usage"] = nullptr;
    events.push_back(Event(c));
  };
  const bool final = response.finish_reason() != pb::FINISH_REASON_UNSPECIFIED;
  if (options_.chat && !started_) {
    chunk({{"index", 0},
           {"delta", {{"role", "assistant"}, {"content", ""}}},
           {"logprobs", nullptr},
           {"finish_reason", nullptr}});
  }
  started_ = true;
  Json logprobs = nullptr;
  if (options_.logprobs && response.tokens_size() > 0) logprobs = LogprobsJson(response);
  if (options_.chat) {
    OutputDelta delta = parser_.Feed(response.text());
    if (final) {
      OutputDelta rest = parser_.Finish();
      delta.reasoning += rest.reasoning;
      delta.content += rest.content;
      delta.tool_calls.insert(delta.tool_calls.end(), rest.tool_calls.begin(),
                              rest.tool_calls.end());
    }
    if (!delta.empty() || !logprobs.is_null()) {
      chunk({{"index", 0}, {"delta", ChatDelta(delta)}, {"logprobs", logprobs},
             {"finish_reason", nullptr}});
    }
  } else if (!response.text().empty() || !logprobs.is_null()) {
    chunk({{"index", 0}, {"text", response.text()}, {"logprobs", logprobs},
           {"finish_reason", nullptr}});
  }
  if (!options_.chat) text_ += response.text();
  if (final) {
    finish_ = response.finish_reason();
    usage_ = response.usage();
    const std::string reason = FinishReason(finish_, tool_calls_ > 0);
    if (options_.chat) {
      chunk({{"index", 0}, {"delta", Json::object()}, {"logprobs", nullptr},
             {"finish_reason", reason}});
    } else {
      chunk({{"index", 0}, {"text", ""}, {"logprobs", nullptr}, {"finish_reason", reason}});
    }
  }
  return events;
}

std::vector<std::string> OpenAiResponder::StreamEnd() {
  std::vector<std::string> events;
  if (options_.include_usage) {
    Json c = Envelope();
    c["choices"] = Json::array();
    c["usage"] = UsageJson();
    events.push_back(Event(c));
  }
  events.push_back("data: [DONE]\n\n");
  return events;
}

std::vector<std::string> OpenAiResponder::StreamError(const absl::Status& status) {
  return {Event(ErrorBody(status)), "data: [DONE]\n\n"};
}

void OpenAiResponder::Accumulate(const pb::GenerateResponse& response) {
  if (options_.logprobs && response.tokens_size() > 0) {
    Json lp = LogprobsJson(response);
    if (options_.chat) {
      for (auto& e : lp["content"]) logprobs_["content"].push_back(e);
    } else {
      for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
        for (auto& e : lp[key]) logprobs_[key].push_back(e);
      }
    }
  }
  text_ += response.text();
  if (response.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) {
    finish_ = response.finish_reason();
    usage_ = response.usage();
  }
}

Json OpenAiResponder::Final() {
  Json out = {{"id", options_.id},
              {"object", options_.chat ? "chat.completion" : "text_completion"},
              {"created", options_.created},
              {"model", options_.model}};
  const Json logprobs = options_.logprobs ? logprobs_ : Json(nullptr);
  if (options_.chat) {
    OutputParserOptions po;
    po.start = options_.output_start;
    const std::string id = options_.id;
    po.tool_call_id = [id](int n) { return absl::StrCat("call_", id, "_", n); };
    const ParsedOutput parsed = ParseCompleteOutput(text_, po);
    Json message = {{"role", "assistant"}};
    message["content"] =
        parsed.content.empty() && !parsed.tool_calls.empty() ? Json(nullptr) : Json(parsed.content);
    if (!parsed.reasoning.empty()) {
      message["reasoning"] = parsed.reasoning;
      message["reasoning_content"] = parsed.reasoning;
    }
    if (!parsed.tool_calls.empty()) {
      Json calls = Json::array();
      for (const ToolCall& call : parsed.tool_calls) {
        calls.push_back({{"id", call.id},
                         {"type", "function"},
                         {"function", {{"name", call.name}, {"arguments", call.arguments_json}}}});
      }
      message["tool_calls"] = calls;
    }
    out["choices"] = Json::array({{{"index", 0},
                                   {"message", message},
                                   {"logprobs", logprobs},
                                   {"finish_reason", FinishReason(finish_, !parsed.tool_calls.empty())}}});
  } else {
    out["choices"] = Json::array({{{"index", 0},
                                   {"text", text_},
                                   {"logprobs", logprobs},
                                   {"finish_reason", FinishReason(finish_, false)}}});
  }
  out["usage"] = UsageJson();
  return out;
}

}  // namespace g4
