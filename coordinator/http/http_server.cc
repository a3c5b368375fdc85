#include "coordinator/http/http_server.h"

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/chat_output/output_parser.h"
#include "common/random_id.h"
#include "coordinator/fleet/replica_info.h"
#include "coordinator/http/openai_request.h"
#include "coordinator/http/openai_response.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;
using Json = nlohmann::ordered_json;

void SendJson(HttpExchange& exchange, int status, const Json& body,
              const HttpHeaders& headers = {}) {
  exchange.Respond(status, "application/json",
                   body.dump(-1, ' ', false, Json::error_handler_t::replace), headers);
}

void SendError(HttpExchange& exchange, const absl::Status& status) {
  const int code = HttpStatusFor(status.code());
  HttpHeaders headers;
  if (code == 429) headers.emplace_back("retry-after", "1");
  SendJson(exchange, code, ErrorBody(status), headers);
}

// OpenAI's error body for the errors the HTTP layer itself gives (no canonical status behind
// them): 404/405 routes, and what the event server refuses (400, 413, 414, 417, 431, 505 for
// malformed or oversized requests; 503 at the connection cap).
std::string ProtocolErrorBody(int status, absl::string_view message) {
  Json error = {{"message", std::string(message)},
                {"type", status >= 500 ? "server_error" : "invalid_request_error"},
                {"param", status == 413 ? Json("body") : Json(nullptr)},
                {"code", status == 413 ? Json("body_too_large") : Json(nullptr)}};
  return Json{{"error", error}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void SendProtocolError(HttpExchange& exchange, int status, absl::string_view message,
                       const HttpHeaders& headers = {}) {
  exchange.Respond(status, "application/json", ProtocolErrorBody(status, message), headers);
}

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, GenerationService* generation)
    : options_(std::move(options)), generation_(generation) {}

HttpServer::~HttpServer() { Stop(); }

absl::StatusOr<int> HttpServer::Start() {
  EventHttpServerOptions o;
  o.host = options_.host;
  o.port = options_.port;
  o.limits.max_body_bytes = options_.max_body_bytes;
  o.max_connections = options_.max_connections;
  o.header_timeout = options_.header_timeout;
  o.body_timeout = options_.body_timeout;
  o.idle_timeout = options_.idle_timeout;
  o.write_timeout = options_.write_timeout;
  o.tls = options_.tls;
  server_ = std::make_unique<EventHttpServer>(
      o,
      [this](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
        HandleRequest(std::move(request), std::move(exchange));
      },
      ProtocolErrorBody);
  return server_->Start();
}

void HttpServer::Stop() {
  // Closing the connections marks every exchange gone: generations in flight cancel.
  if (server_ != nullptr) server_->Stop();
  absl::flat_hash_map<uint64_t, std::thread> threads;
  {
    absl::MutexLock lock(&threads_mu_);
    stopping_ = true;
    threads.swap(threads_);
    finished_.clear();
  }
  for (auto& [id, thread] : threads) thread.join();
}

bool HttpServer::RunOnThread(std::function<void()> fn) {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&threads_mu_);
    if (stopping_) return false;
    for (uint64_t id : finished_) {
      auto it = threads_.find(id);
      done.push_back(std::move(it->second));
      threads_.erase(it);
    }
    finished_.clear();
    const uint64_t id = next_thread_++;
    threads_.emplace(id, std::thread([this, id, fn = std::move(fn)] {
                       fn();
                       absl::MutexLock lock(&threads_mu_);
                       finished_.push_back(id);
                     }));
  }
  for (std::thread& t : done) t.join();  // they have finished their work
  return true;
}

void HttpServer::HandleRequest(HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
  const std::string& path = request.path;
  // API keys before anything else: a caller without one learns nothing, not even which routes
  // exist. /health stays open for probes unless protect_health.
  std::string caller = kHttpCaller;
  if (options_.api_keys != nullptr && options_.api_keys->enabled() &&
      (path != "/health" || options_.protect_health)) {
    const std::string* header = request.Header(kAuthorizationMetadataKey);
    absl::StatusOr<std::string> identity =
        options_.api_keys->Authenticate(header == nullptr ? std::nullopt
                                                          : std::optional<absl::string_view>(
                                                                *header));
    if (!identity.ok()) {
      return SendJson(*exchange, 401, ErrorBody(identity.status()),
                      {{"WWW-Authenticate", "Bearer"}});
    }
    caller = *std::move(identity);
  }
  if (path == "/v1/completions" || path == "/v1/chat/completions") {
    if (request.method != "POST") {
      return SendProtocolError(*exchange, 405,
                               absl::StrCat("Method not allowed: ", request.method, " ", path),
                               {{"Allow", "POST"}});
    }
    const bool chat = path == "/v1/chat/completions";
    auto shared = std::make_shared<HttpRequest>(std::move(request));
    if (!RunOnThread([this, shared, exchange, chat, caller] {
          HandleGenerate(*shared, *exchange, chat, caller);
        })) {
      SendError(*exchange, absl::UnavailableError("coordinator is shutting down"));
    }
    return;
  }
  if (path == "/v1/models" || path == "/health") {
    if (request.method != "GET") {
      return SendProtocolError(*exchange, 405,
                               absl::StrCat("Method not allowed: ", request.method, " ", path),
                               {{"Allow", "GET"}});
    }
    return path == "/health" ? HandleHealth(*exchange) : HandleModels(*exchange);
  }
  SendProtocolError(*exchange, 404, absl::StrCat("Not found: ", request.method, " ", path));
}

void HttpServer::HandleModels(HttpExchange& exchange) {
  const FleetManager* fleet = generation_->fleet();
  Json model = {{"id", generation_->options().model_id},
                {"object", "model"},
                {"created", absl::ToUnixSeconds(absl::Now())},
                {"owned_by", "g4serve"},
                {"root", generation_->options().model_id},
                {"max_model_len", fleet->MaxContext()}};
  SendJson(exchange, 200, Json{{"object", "list"}, {"data", Json::array({model})}});
}

void HttpServer::HandleHealth(HttpExchange& exchange) {
  const FleetManager* fleet = generation_->fleet();
  const int ready = fleet->ReadyReplicas();
  const bool draining = generation_->draining();
  Json replicas = Json::array();
  const absl::Time now = absl::Now();
  for (const ReplicaStatus& r : fleet->Replicas()) {  // why each one is (not) serving
    const pb::ReplicaInfo info = ToReplicaInfo(r, now);
    replicas.push_back(Json{{"index", info.index()},
                            {"state", info.state()},
                            {"reason", info.reason()},
                            {"error", info.error()},
                            {"failures", info.failures()},
                            {"retry_in_seconds", info.retry_in_seconds()},
                            {"recoveries", info.recoveries()}});
  }
  const bool ok = ready > 0 && !draining;
  SendJson(exchange, ok ? 200 : 503,
           Json{{"status", draining ? "draining" : ok ? "ok" : "unavailable"},
                {"replicas_ready", ready},
                {"replicas_total", fleet->TotalReplicas()},
                {"requests_in_flight", generation_->InFlightRequests()},
                {"replicas", replicas}});
}

void HttpServer::HandleGenerate(const HttpRequest& http, HttpExchange& exchange, bool chat,
                                const std::string& caller) {
  const absl::Time arrival = absl::Now();
  absl::StatusOr<OpenAiRequest> parsed =
      chat ? ParseChatRequest(http.body) : ParseCompletionRequest(http.body);
  if (!parsed.ok()) return SendError(exchange, parsed.status());
  if (absl::Status s = generation_->CheckModel(parsed->model); !s.ok()) {
    return SendError(exchange, s);
  }
  ResponseOptions ro;
  ro.chat = chat;
  ro.id = RandomId(chat ? "chatcmpl-" : "cmpl-");
  ro.created = absl::ToUnixSeconds(absl::Now());
  ro.model = generation_->options().model_id;
  ro.include_usage = parsed->include_usage;
  ro.logprobs = parsed->logprobs;
  ro.codec = generation_->codec();
  pb::GenerateRequest& request = parsed->generate;
  request.set_request_id(ro.id);
  if (chat) {
    if (ro.codec == nullptr) {
      return SendError(exchange, absl::FailedPreconditionError("model has no tokenizer"));
    }
    absl::StatusOr<std::string> prompt = ro.codec->RenderChat(parsed->chat_request.dump());
    if (!prompt.ok()) {
      absl::string_view message = prompt.status().message();
      absl::ConsumePrefix(&message, "chat_json: ");
      return SendError(exchange, absl::Status(prompt.status().code(), message));
    }
    ro.output_start = OutputStartForPrompt(*prompt);
    request.set_text(*std::move(prompt));
  }
  absl::StatusOr<GenerationService::Prepared> prepared = generation_->Prepare(request);
  if (!prepared.ok()) {
    // The HTTP field of a token prompt is `prompt`.
    absl::string_view message = prepared.status().message();
    if (absl::ConsumePrefix(&message, "token_ids")) {
      return SendError(exchange,
                       absl::Status(prepared.status().code(), absl::StrCat("prompt", message)));
    }
    return SendError(exchange, prepared.status());
  }

  OpenAiResponder responder(ro);
  GenerationSink sink;
  sink.arrival = arrival;
  // A client that closes the connection, streaming or not, cancels the request.
  sink.cancelled = [&exchange] { return exchange.client_gone(); };
  if (!parsed->stream) {
    sink.write = [&responder](const pb::GenerateResponse& r) {
      responder.Accumulate(r);
      return true;
    };
    absl::Status status = generation_->Generate(caller, request, *prepared, sink);
    if (!status.ok()) return SendError(exchange, status);
    return SendJson(exchange, 200, responder.Final());
  }
  // The head goes out with the first event, so that errors before any output (e.g. a full
  // queue) still get their own HTTP status.
  bool started = false;
  sink.write = [&](const pb::GenerateResponse& r) {
    if (!started) {
      exchange.StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
      started = true;
    }
    for (const std::string& event : responder.StreamEvents(r)) {
      if (!exchange.Write(event)) return false;
    }
    return true;
  };
  absl::Status status = generation_->Generate(caller, request, *prepared, sink);
  if (!started) {
    if (!status.ok()) return SendError(exchange, status);
    exchange.StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  }
  for (const std::string& event :
       status.ok() ? responder.StreamEnd() : OpenAiResponder::StreamError(status)) {
    if (!exchange.Write(event)) return;
  }
  exchange.Finish();
}

}  // namespace g4
