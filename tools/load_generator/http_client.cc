#include "tools/load_generator/http_client.h"

#include <chrono>
#include <cstdint>

#include <httplib.h>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "tools/load_generator/sse_parser.h"

namespace g4::load {

HttpLoadClient::HttpLoadClient(const LoadOptions& options) : options_(options) {
  absl::string_view hp = options_.server;
  absl::ConsumePrefix(&hp, "http://");
  absl::ConsumeSuffix(&hp, "/");
  const size_t colon = hp.rfind(':');
  if (colon != absl::string_view::npos && hp.find(']', colon) == absl::string_view::npos &&
      absl::SimpleAtoi(hp.substr(colon + 1), &port_)) {
    hp = hp.substr(0, colon);
  }
  if (absl::ConsumePrefix(&hp, "[")) absl::ConsumeSuffix(&hp, "]");
  host_ = std::string(hp);
}

std::string HttpLoadClient::RequestBody(const RequestSpec& spec) const {
  nlohmann::json body = {
      {"model", options_.model},
      {"max_tokens", spec.max_tokens},
      {"temperature", options_.temperature},
      {"stream", true},
      {"stream_options", {{"include_usage", true}}},
      {"ignore_eos", options_.ignore_eos},
  };
  if (!spec.prompt_text.empty()) {
    body["prompt"] = spec.prompt_text;
  } else {
    body["prompt"] = spec.prompt_ids;
  }
  return body.dump();
}

RequestResult HttpLoadClient::Send(const RequestSpec& spec) {
  RequestResult result;
  result.prompt_tokens = spec.prompt_len;

  httplib::Client client(host_, port_);
  const int64_t timeout_us = absl::ToInt64Microseconds(options_.timeout);
  client.set_connection_timeout(10, 0);
  client.set_read_timeout(timeout_us / 1000000, timeout_us % 1000000);
  client.set_write_timeout(timeout_us / 1000000, timeout_us % 1000000);

  httplib::Request request;
  request.method = "POST";
  request.path = "/v1/completions";
  request.headers = {{"Accept", "text/event-stream"}};
  request.set_header("Content-Type", "application/json");
  request.body = RequestBody(spec);

  int status = -1;
  std::string raw;       // the first bytes of the body, for error messages
  std::string error;     // an error reported inside the stream
  bool done = false;
  int usage_completion = -1;
  SseParser parser;
  const auto sent = ChunkTimer::Clock::now();
  ChunkTimer timer(sent);
  request.response_handler = [&](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    const auto now = ChunkTimer::Clock::now();
    if (raw.size() < 512) raw.append(data, std::min<size_t>(size, 512 - raw.size()));
    if (status != 200) return true;  // keep the error body
    for (const std::string& payload : parser.Feed(absl::string_view(data, size))) {
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      nlohmann::json chunk = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
      if (chunk.is_discarded() || !chunk.is_object()) {
        error = absl::StrCat("bad SSE data: ", payload.substr(0, 200));
        return false;
      }
      if (chunk.contains("error")) {
        error = absl::StrCat("stream error: ", chunk["error"].dump());
        return false;
      }
      if (auto it = chunk.find("choices"); it != chunk.end() && it->is_array() && !it->empty()) {
        const nlohmann::json& choice = it->front();
        if (auto text = choice.find("text");
            text != choice.end() && text->is_string() && !text->get_ref<const std::string&>().empty()) {
          timer.OnChunk(1, now);
        }
      }
      if (auto usage = chunk.find("usage"); usage != chunk.end() && usage->is_object()) {
        if (usage->contains("completion_tokens") && (*usage)["completion_tokens"].is_number()) {
          usage_completion = (*usage)["completion_tokens"].get<int>();
        }
        if (usage->contains("prompt_tokens") && (*usage)["prompt_tokens"].is_number()) {
          result.prompt_tokens = (*usage)["prompt_tokens"].get<int>();
        }
      }
    }
    return true;
  };

  httplib::Result response = client.send(request);
  timer.Finish(&result);
  // Tokens per SSE chunk are not in the OpenAI format: trust the final usage when given.
  if (usage_completion >= 0) result.output_tokens = usage_completion;
  if (!error.empty()) {
    result.error = error;
  } else if (!response) {
    result.error = absl::StrCat("HTTP request failed: ", httplib::to_string(response.error()));
  } else if (status != 200) {
    result.error = absl::StrCat("HTTP ", status, ": ", raw);
  } else if (!done) {
    result.error = "stream ended without data: [DONE]";
  } else {
    result.success = true;
  }
  return result;
}

}  // namespace g4::load
