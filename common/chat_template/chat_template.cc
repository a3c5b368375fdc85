#include "common/chat_template/chat_template.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/jinja/value.h"
#include "common/json_depth.h"
#include "common/status_macros.h"

namespace g4 {
namespace {

using Json = nlohmann::ordered_json;

absl::Status FieldError(const std::string& field, std::string_view msg) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": ", absl::string_view(msg.data(), msg.size())));
}

bool IsKnownRole(const std::string& role) {
  return role == "system" || role == "developer" || role == "user" || role == "assistant" ||
         role == "tool";
}

// Concatenates the text parts of a content array (used where the templates expect a string).
absl::StatusOr<std::string> JoinTextParts(const Json& parts, const std::string& field) {
  std::string out;
  for (size_t j = 0; j < parts.size(); ++j) {
    const Json& p = parts[j];
    const std::string pf = absl::StrCat(field, "[", j, "]");
    if (!p.is_object()) return FieldError(pf, "content part must be an object");
    auto type = p.find("type");
    if (type == p.end() || !type->is_string() || type->get<std::string>() != "text") {
      return FieldError(pf + ".type", "only \"text\" parts are allowed here");
    }
    auto text = p.find("text");
    if (text == p.end() || !text->is_string()) return FieldError(pf + ".text", "must be a string");
    out += text->get<std::string>();
  }
  return out;
}

// Validates content parts and maps OpenAI part types to the template's (text/image/audio/video).
absl::StatusOr<Json> NormalizeParts(const Json& parts, const std::string& field) {
  Json out = Json::array();
  for (size_t j = 0; j < parts.size(); ++j) {
    const Json& p = parts[j];
    const std::string pf = absl::StrCat(field, "[", j, "]");
    if (!p.is_object()) return FieldError(pf, "content part must be an object");
    auto type_it = p.find("type");
    if (type_it == p.end() || !type_it->is_string()) return FieldError(pf + ".type", "must be a string");
    const std::string type = type_it->get<std::string>();
    Json part = p;
    if (type == "text") {
      auto text = p.find("text");
      if (text == p.end() || !text->is_string()) return FieldError(pf + ".text", "must be a string");
    } else if (type == "image" || type == "image_url") {
      part["type"] = "image";
    } else if (type == "audio" || type == "input_audio") {
      part["type"] = "audio";
    } else if (type == "video" || type == "video_url") {
      part["type"] = "video";
    } else {
      return FieldError(pf + ".type", absl::StrCat("unsupported content part type \"", type, "\""));
    }
    out.push_back(std::move(part));
  }
  return out;
}

absl::StatusOr<Json> NormalizeToolCalls(const Json& calls, const std::string& field) {
  if (!calls.is_array()) return FieldError(field, "must be an array");
  Json out = Json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    const std::string cf = absl::StrCat(field, "[", k, "]");
    const Json& c = calls[k];
    if (!c.is_object()) return FieldError(cf, "must be an object");
    auto fn = c.find("function");
    if (fn == c.end() || !fn->is_object()) return FieldError(cf + ".function", "must be an object");
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string()) {
      return FieldError(cf + ".function.name", "must be a string");
    }
    Json call = c;
    auto args = fn->find("arguments");
    if (args != fn->end() && args->is_string()) {
      const std::string& text = args->get_ref<const std::string&>();
      if (JsonTextDepth(text) > kMaxJsonDepth) {
        return JsonTooDeepError(cf + ".function.arguments");
      }
      Json parsed = text.empty() ? Json::object() : Json::parse(text, nullptr, false);
      if (parsed.is_discarded() || !parsed.is_object()) {
        return FieldError(cf + ".function.arguments", "must be a JSON object (or a string encoding one)");
      }
      call["function"]["arguments"] = std::move(parsed);
    } else if (args != fn->end() && !args->is_object() && !args->is_null()) {
      return FieldError(cf + ".function.arguments", "must be a JSON object (or a string encoding one)");
    }
    out.push_back(std::move(call));
  }
  return out;
}

// Builds a template `tool_responses` entry from an OpenAI tool message.
absl::StatusOr<Json> ToolResponse(const Json& msg, const Json& assistant, const std::string& field) {
  Json resp = Json::object();
  std::string name;
  if (auto n = msg.find("name"); n != msg.end() && n->is_string()) {
    name = n->get<std::string>();
  } else if (auto id = msg.find("tool_call_id"); id != msg.end() && id->is_string()) {
    for (const Json& call : assistant["tool_calls"]) {
      auto cid = call.find("id");
      if (cid != call.end() && *cid == *id) name = call["function"]["name"].get<std::string>();
    }
  } else if (assistant["tool_calls"].size() == 1) {
    name = assistant["tool_calls"][0]["function"]["name"].get<std::string>();
  }
  if (!name.empty()) resp["name"] = name;
  std::string text;
  auto content = msg.find("content");
  if (content == msg.end() || content->is_null()) {
    text = "";
  } else if (content->is_string()) {
    text = content->get<std::string>();
  } else if (content->is_array()) {
    G4_ASSIGN_OR_RETURN(text, JoinTextParts(*content, field + ".content"));
  } else {
    return FieldError(field + ".content", "must be a string, an array of text parts or null");
  }
  // A JSON object/array result is passed structured (rendered as key:value); anything else is
  // the plain string.
  if (JsonTextDepth(text) > kMaxJsonDepth) return JsonTooDeepError(field + ".content");
  Json parsed = Json::parse(text, nullptr, false);
  if (!parsed.is_discarded() && (parsed.is_object() || parsed.is_array())) {
    resp["response"] = std::move(parsed);
  } else {
    resp["response"] = text;
  }
  return resp;
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Load(std::string_view template_text,
                                                std::string bos_token) {
  G4_ASSIGN_OR_RETURN(jinja::Template t, jinja::Template::Parse(template_text));
  ChatTemplate ct;
  ct.template_ = std::move(t);
  ct.bos_token_ = std::move(bos_token);
  return ct;
}

absl::StatusOr<ChatTemplate> ChatTemplate::LoadFile(const std::string& path,
                                                    std::string bos_token) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read chat template ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return Load(ss.str(), std::move(bos_token));
}

absl::StatusOr<Json> ChatTemplate::BuildContext(const Json& request) const {
  if (!request.is_object()) return FieldError("request", "must be a JSON object");
  // Conversion to Jinja values and the template's own walks recurse once per level.
  if (JsonValueDepth(request) > kMaxJsonDepth) return JsonTooDeepError("request");
  auto msgs_it = request.find("messages");
  if (msgs_it == request.end()) return FieldError("messages", "missing");
  if (!msgs_it->is_array()) return FieldError("messages", "must be an array");
  if (msgs_it->empty()) return FieldError("messages", "must not be empty");

  Json messages = Json::array();
  for (size_t i = 0; i < msgs_it->size(); ++i) {
    const Json& m = (*msgs_it)[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return FieldError(field, "must be an object");
    auto role_it = m.find("role");
    if (role_it == m.end() || !role_it->is_string()) return FieldError(field + ".role", "must be a string");
    const std::string role = role_it->get<std::string>();
    if (!IsKnownRole(role)) {
      return FieldError(field + ".role", absl::StrCat("unknown role \"", role,
                                                      "\" (expected system, developer, user, "
                                                      "assistant or tool)"));
    }
    Json msg = m;

    // Content.
    auto content = m.find("content");
    if (content != m.end() && !content->is_null() && !content->is_string() && !content->is_array()) {
      return FieldError(field + ".content", "must be a string, an array of content parts or null");
    }

    if (role == "tool" && m.find("tool_responses") == m.end()) {
      // OpenAI tool result: fold into the preceding assistant turn's tool_responses, which the
      // Gemma 4 templates render inside the same model turn (docs/gemma4-text.md §5.4).
      if (messages.empty() || messages.back()["role"] != "assistant" ||
          !messages.back().contains("tool_calls") || !messages.back()["tool_calls"].is_array() ||
          messages.back()["tool_calls"].empty()) {
        return FieldError(field, "tool message must follow an assistant message with tool_calls");
      }
      Json& assistant = messages.back();
      G4_ASSIGN_OR_RETURN(Json resp, ToolResponse(m, assistant, field));
      if (!assistant.contains("tool_responses") || !assistant["tool_responses"].is_array()) {
        assistant["tool_responses"] = Json::array();
      }
      assistant["tool_responses"].push_back(std::move(resp));
      continue;
    }
    if (role == "tool") {
      const Json& tr = m["tool_responses"];
      if (!tr.is_array()) return FieldError(field + ".tool_responses", "must be an array");
      for (size_t k = 0; k < tr.size(); ++k) {
        if (!tr[k].is_object()) {
          return FieldError(absl::StrCat(field, ".tool_responses[", k, "]"), "must be an object");
        }
      }
    }

    if (content != m.end() && content->is_array()) {
      if (role == "system" || role == "developer") {
        G4_ASSIGN_OR_RETURN(std::string text, JoinTextParts(*content, field + ".content"));
        msg["content"] = text;
      } else {
        G4_ASSIGN_OR_RETURN(msg["content"], NormalizeParts(*content, field + ".content"));
      }
    }

    // Reasoning (vLLM renamed reasoning_content → reasoning; templates read reasoning_content).
    for (const char* key : {"reasoning_content", "reasoning"}) {
      auto r = m.find(key);
      if (r != m.end() && !r->is_null() && !r->is_string()) {
        return FieldError(absl::StrCat(field, ".", key), "must be a string or null");
      }
    }
    if (auto r = m.find("reasoning");
        r != m.end() && r->is_string() &&
        (!m.contains("reasoning_content") || m["reasoning_content"].is_null())) {
      msg["reasoning_content"] = *r;
    }

    if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) {
      G4_ASSIGN_OR_RETURN(msg["tool_calls"], NormalizeToolCalls(*tc, field + ".tool_calls"));
    }
    messages.push_back(std::move(msg));
  }

  Json ctx = Json::object();
  ctx["messages"] = std::move(messages);
  if (auto tools = request.find("tools"); tools != request.end() && !tools->is_null()) {
    if (!tools->is_array()) return FieldError("tools", "must be an array");
    Json out = Json::array();
    for (size_t k = 0; k < tools->size(); ++k) {
      const Json& t = (*tools)[k];
      const std::string tf = absl::StrCat("tools[", k, "]");
      if (!t.is_object()) return FieldError(tf, "must be an object");
      if (auto fn = t.find("function"); fn != t.end()) {
        if (!fn->is_object()) return FieldError(tf + ".function", "must be an object");
        auto name = fn->find("name");
        if (name == fn->end() || !name->is_string()) return FieldError(tf + ".function.name", "must be a string");
        out.push_back(t);
      } else if (auto name = t.find("name"); name != t.end() && name->is_string()) {
        // Bare function declaration: wrap it the way OpenAI tools look.
        out.push_back(Json{{"type", "function"}, {"function", t}});
      } else {
        return FieldError(tf + ".function", "missing");
      }
    }
    ctx["tools"] = std::move(out);
  }
  if (auto et = request.find("enable_thinking"); et != request.end() && !et->is_null()) {
    if (!et->is_boolean()) return FieldError("enable_thinking", "must be a boolean");
    ctx["enable_thinking"] = *et;
  }
  bool add_generation_prompt = true;
  if (auto agp = request.find("add_generation_prompt"); agp != request.end() && !agp->is_null()) {
    if (!agp->is_boolean()) return FieldError("add_generation_prompt", "must be a boolean");
    add_generation_prompt = agp->get<bool>();
  }
  ctx["add_generation_prompt"] = add_generation_prompt;
  ctx["bos_token"] = bos_token_;
  return ctx;
}

absl::StatusOr<std::string> ChatTemplate::Render(const Json& request) const {
  G4_ASSIGN_OR_RETURN(Json ctx, BuildContext(request));
  return template_.Render(jinja::Value::FromJson(ctx));
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::json& request) const {
  // The conversion below copies recursively.
  if (JsonValueDepth(request) > kMaxJsonDepth) return JsonTooDeepError("request");
  return Render(Json(request));
}

}  // namespace g4
