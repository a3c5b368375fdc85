#include "coordinator/http/http_server.h"

#include <deque>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/chat_output/output_parser.h"
#include "coordinator/http/openai_request.h"
#include "coordinator/http/openai_response.h"
#include "httplib.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;
using Json = nlohmann::ordered_json;

void SendJson(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, Json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const absl::Status& status) {
  const int code = HttpStatusFor(status.code());
  if (code == 429) res.set_header("retry-after", "1");
  SendJson(res, code, ErrorBody(status));
}

// Each formed replica's state, and why it cannot serve when it cannot (e.g. its plan does not
// fit the workers' memory): what the coordinator learns only once workers register.
Json ReplicasJson(const std::vector<ReplicaStatus>& replicas) {
  Json out = Json::array();
  for (const ReplicaStatus& r : replicas) {
    Json j = {{"index", r.index}, {"state", std::string(ReplicaStateName(r.state))}};
    if (!r.error.empty()) j["error"] = r.error;
    out.push_back(std::move(j));
  }
  return out;
}

// One streaming request: the generation runs on its own thread and queues SSE events; the
// connection's thread (the content provider) writes them.
struct StreamState {
  absl::Mutex mu;
  std::deque<std::string> events ABSL_GUARDED_BY(mu);
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  std::atomic<bool> client_gone{false};
  std::thread thread;

  void Push(std::vector<std::string> more) {
    absl::MutexLock lock(&mu);
    for (std::string& e : more) events.push_back(std::move(e));
  }
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, GenerationService* generation)
    : options_(std::move(options)),
      generation_(generation),
      id_prefix_(absl::StrCat(absl::Hex(absl::ToUnixMicros(absl::Now())))) {}

HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::NewId(bool chat) {
  return absl::StrCat(chat ? "chatcmpl-" : "cmpl-", id_prefix_, "-", next_id_.fetch_add(1));
}

absl::StatusOr<int> HttpServer::Start() {
  server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *server_;
  const int threads = options_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_read_timeout(absl::ToChronoSeconds(options_.read_timeout));
  s.set_write_timeout(absl::ToChronoSeconds(options_.write_timeout));
  s.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, /*chat=*/false);
  });
  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    HandleGenerate(req, res, /*chat=*/true);
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    HandleModels(res);
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) { HandleHealth(res); });
  const size_t max_body = options_.max_body_bytes;
  // Errors the library produces itself (unknown route, oversized body, bad request line) get
  // OpenAI's error body too.
  s.set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message;
    switch (res.status) {
      case 404:
        message = absl::StrCat("Not found: ", req.method, " ", req.path);
        break;
      case 413:
        message = absl::StrCat("body: the request body exceeds ", max_body, " bytes");
        break;
      default:
        message = absl::StrCat("HTTP ", res.status);
    }
    Json error = {{"message", message},
                  {"type", res.status >= 500 ? "server_error" : "invalid_request_error"},
                  {"param", res.status == 413 ? Json("body") : Json(nullptr)},
                  {"code", res.status == 413 ? Json("body_too_large") : Json(nullptr)}};
    res.set_content(Json{{"error", error}}.dump(), "application/json");
  });
  const int port = options_.port == 0 ? s.bind_to_any_port(options_.host)
                                      : (s.bind_to_port(options_.host, options_.port)
                                             ? options_.port
                                             : -1);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.host, ":", options_.port, " (HTTP)"));
  }
  listener_ = std::thread([this] { server_->listen_after_bind(); });
  return port;
}

void HttpServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (listener_.joinable()) listener_.join();
}

void HttpServer::HandleModels(httplib::Response& res) {
  const FleetManager* fleet = generation_->fleet();
  Json model = {{"id", generation_->options().model_id},
                {"object", "model"},
                {"created", absl::ToUnixSeconds(absl::Now())},
                {"owned_by", "g4serve"},
                {"root", generation_->options().model_id},
                {"max_model_len", fleet->MaxContext()}};
  SendJson(res, 200, Json{{"object", "list"}, {"data", Json::array({model})}});
}

void HttpServer::HandleHealth(httplib::Response& res) {
  const FleetManager* fleet = generation_->fleet();
  const int ready = fleet->ReadyReplicas();
  SendJson(res, ready > 0 ? 200 : 503,
           Json{{"status", ready > 0 ? "ok" : "unavailable"},
                {"replicas_ready", ready},
                {"replicas_total", fleet->TotalReplicas()},
                {"replicas", ReplicasJson(fleet->Replicas())},
                {"requests_in_flight", generation_->InFlightRequests()}});
}

void HttpServer::HandleGenerate(const httplib::Request& req, httplib::Response& res, bool chat) {
  const absl::Time arrival = absl::Now();
  absl::StatusOr<OpenAiRequest> parsed =
      chat ? ParseChatRequest(req.body) : ParseCompletionRequest(req.body);
  if (!parsed.ok()) return SendError(res, parsed.status());
  if (absl::Status s = generation_->CheckModel(parsed->model); !s.ok()) return SendError(res, s);
  ResponseOptions ro;
  ro.chat = chat;
  ro.id = NewId(chat);
  ro.created = absl::ToUnixSeconds(absl::Now());
  ro.model = generation_->options().model_id;
  ro.include_usage = parsed->include_usage;
  ro.logprobs = parsed->logprobs;
  ro.codec = generation_->codec();
  pb::GenerateRequest& request = parsed->generate;
  request.set_request_id(ro.id);
  if (chat) {
    if (ro.codec == nullptr) {
      return SendError(res, absl::FailedPreconditionError("model has no tokenizer"));
    }
    absl::StatusOr<std::string> prompt = ro.codec->RenderChat(parsed->chat_request.dump());
    if (!prompt.ok()) {
      absl::string_view message = prompt.status().message();
      absl::ConsumePrefix(&message, "chat_json: ");
      return SendError(res, absl::Status(prompt.status().code(), message));
    }
    ro.output_start = OutputStartForPrompt(*prompt);
    request.set_text(*std::move(prompt));
  }
  absl::StatusOr<GenerationService::Prepared> prepared = generation_->Prepare(request);
  if (!prepared.ok()) {
    // The HTTP field of a token prompt is `prompt`.
    absl::string_view message = prepared.status().message();
    if (absl::ConsumePrefix(&message, "token_ids")) {
      return SendError(res, absl::Status(prepared.status().code(), absl::StrCat("prompt", message)));
    }
    return SendError(res, prepared.status());
  }

  if (!parsed->stream) {
    OpenAiResponder responder(ro);
    GenerationSink sink;
    sink.arrival = arrival;
    sink.write = [&responder](const pb::GenerateResponse& r) {
      responder.Accumulate(r);
      return true;
    };
    absl::Status status = generation_->Generate(request, *prepared, sink);
    if (!status.ok()) return SendError(res, status);
    return SendJson(res, 200, responder.Final());
  }

  auto state = std::make_shared<StreamState>();
  state->thread = std::thread([this, state, ro, arrival, request = std::move(request),
                               prepared = *std::move(prepared)]() mutable {
    OpenAiResponder responder(ro);
    GenerationSink sink;
    sink.arrival = arrival;
    sink.write = [&](const pb::GenerateResponse& r) {
      state->Push(responder.StreamEvents(r));
      return !state->client_gone.load();
    };
    sink.cancelled = [&state] { return state->client_gone.load(); };
    absl::Status status = generation_->Generate(request, prepared, sink);
    absl::MutexLock lock(&state->mu);
    if (status.ok()) {
      for (std::string& e : responder.StreamEnd()) state->events.push_back(std::move(e));
    }
    state->status = status;
    state->done = true;
  });
  // Wait for the first event (or the end) so that errors before any output (e.g. a full queue)
  // still get their own HTTP status.
  absl::Status early_error;
  {
    absl::MutexLock lock(&state->mu);
    state->mu.Await(absl::Condition(
        +[](StreamState* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
          return s->done || !s->events.empty();
        },
        state.get()));
    if (state->done && state->events.empty()) early_error = state->status;
  }
  if (!early_error.ok()) {
    state->thread.join();
    return SendError(res, early_error);
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        std::deque<std::string> batch;
        bool done = false;
        absl::Status status;
        {
          absl::MutexLock lock(&state->mu);
          state->mu.AwaitWithTimeout(
              absl::Condition(
                  +[](StreamState* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) {
                    return s->done || !s->events.empty();
                  },
                  state.get()),
              absl::Seconds(1));
          batch.swap(state->events);
          done = state->done;
          status = state->status;
        }
        for (const std::string& e : batch) {
          if (!sink.write(e.data(), e.size())) {
            state->client_gone = true;
            return false;
          }
        }
        if (!done) {
          if (batch.empty() && !sink.is_writable()) {
            state->client_gone = true;
            return false;
          }
          return true;
        }
        if (!status.ok()) {
          for (const std::string& e : OpenAiResponder::StreamError(status)) {
            if (!sink.write(e.data(), e.size())) return false;
          }
        }
        sink.done();
        return true;
      },
      [state](bool success) {
        if (!success) state->client_gone = true;
        if (state->thread.joinable()) state->thread.join();
      });
}

}  // namespace g4
