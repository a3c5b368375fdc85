#include "coordinator/api/generation.h"

#include <algorithm>
#include <iostream>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grammar/structured_output_proto.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "proto/grpc_status.h"
#include "grpcpp/client_context.h"
#include "worker/sampling/proto_conversion.h"
#include "worker/sampling/sampling_params.h"
#include "worker/sampling/stop_string_matcher.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"

namespace g4 {
namespace {

namespace pb = ::g4serve::v1;
namespace wpb = ::g4serve::worker::v1;

bool SinkCancelled(const GenerationSink& sink) { return sink.cancelled && sink.cancelled(); }

// The in-flight map's key: the caller and its id, unambiguously.
std::string InFlightKey(absl::string_view caller, absl::string_view request_id) {
  return absl::StrCat(caller.size(), ":", caller, request_id);
}

absl::Status PromptTooLong(absl::string_view count, int64_t max_context) {
  return absl::InvalidArgumentError(
      absl::StrCat("prompt: ", count, " tokens leave no room to generate within the maximum "
                   "context of ", max_context, " tokens"));
}

// Bounds on repeated fields and strings, checked before anything walks them.
absl::Status CheckBounds(const pb::GenerateRequest& request) {
  const std::string& id = request.request_id();
  if (id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: at most ", kMaxRequestIdBytes,
                                                   " bytes, got ", id.size()));
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError("request_id: printable ASCII without spaces only");
    }
  }
  const pb::StoppingCriteria& stopping = request.stopping();
  if (stopping.stop_size() > kMaxStopStrings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stop: at most ", kMaxStopStrings, " stop strings, got ", stopping.stop_size()));
  }
  for (int i = 0; i < stopping.stop_size(); ++i) {
    if (stopping.stop(i).size() > kMaxStopStringBytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop[", i, "]: at most ",
                                                     kMaxStopStringBytes, " bytes, got ",
                                                     stopping.stop(i).size()));
    }
  }
  if (stopping.stop_token_ids_size() > kMaxStopTokenIds) {
    return absl::InvalidArgumentError(
        absl::StrCat("stop_token_ids: at most ", kMaxStopTokenIds, " ids, got ",
                     stopping.stop_token_ids_size()));
  }
  return absl::OkStatus();
}

}  // namespace

GenerationService::GenerationService(InferenceOptions options, const TextCodec* codec,
                                     const FleetManager* fleet, Router* router)
    : options_(std::move(options)),
      codec_(codec),
      fleet_(fleet),
      router_(router) {
  watcher_ = std::thread([this] { WatchCancellations(); });
}

GenerationService::~GenerationService() { Shutdown(); }

void GenerationService::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
      for (auto& [id, f] : in_flight_) {
        if (f.worker != nullptr) f.worker->TryCancel();
      }
    }
  }
  if (watcher_.joinable()) watcher_.join();
}

// Every poll interval: cancels the worker calls of clients that went away, and of requests
// whose replica left service while another one can take them (they migrate, see Run).
void GenerationService::WatchCancellations() {
  while (true) {
    const absl::flat_hash_set<int> evacuate =
        ReplicasToEvacuate(fleet_->Endpoints(), absl::Now(), options_.stall_limit);
    absl::MutexLock lock(&mu_);
    for (auto& [id, f] : in_flight_) {
      if (f.worker == nullptr) continue;
      if (SinkCancelled(*f.sink)) {
        f.worker->TryCancel();
      } else if (!f.evacuated && evacuate.contains(f.replica) &&
                 absl::Now() - absl::FromUnixNanos(f.progress->load()) >=
                     options_.progress_grace) {
        f.evacuated = true;
        f.worker->TryCancel();
      }
    }
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.cancel_poll_interval)) return;
  }
}

void GenerationService::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool GenerationService::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool GenerationService::WaitForNoRequests(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_.empty(); };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

int GenerationService::InFlightRequests() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(in_flight_.size());
}

absl::Status GenerationService::CheckModel(const std::string& model) const {
  if (model.size() > kMaxModelNameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("model: at most ", kMaxModelNameBytes,
                                                   " bytes, got ", model.size()));
  }
  if (!model.empty() && model != options_.model_id) {
    return absl::NotFoundError(
        absl::StrCat("model '", model, "' not found; this server serves '", options_.model_id, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> GenerationService::Tokenize(
    const TokenizationPool::Work& work) const {
  if (options_.tokenization_pool == nullptr) return work();
  return options_.tokenization_pool->Run(work);
}

absl::StatusOr<std::vector<int32_t>> GenerationService::EncodePrompt(absl::string_view text,
                                                                   int64_t max_context) const {
  if (max_context <= 0) {
    return Tokenize([&] { return codec_->Encode(text, /*add_special_tokens=*/false); });
  }
  const int64_t max_tokens = max_context - 1;  // a prompt leaves room for one token
  const int bytes_per_token = codec_->MaxInputBytesPerToken();
  const int64_t max_bytes = MaxPromptTextBytes(max_tokens, bytes_per_token);
  if (max_bytes >= 0 && static_cast<int64_t>(text.size()) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt: ", text.size(), " bytes of text cannot fit in the maximum context of ",
        max_context, " tokens (at most ", max_bytes, " bytes: one token covers at most ",
        bytes_per_token, ")"));
  }
  absl::StatusOr<std::vector<int32_t>> ids = Tokenize([&] {
    return codec_->EncodeAtMost(text, /*add_special_tokens=*/false,
                                static_cast<size_t>(max_tokens));
  });
  if (ids.status().code() == absl::StatusCode::kOutOfRange) {
    return PromptTooLong(absl::StrCat("more than ", max_tokens), max_context);
  }
  return ids;
}

absl::StatusOr<GenerationService::Prepared> GenerationService::Prepare(
    const pb::GenerateRequest& request) const {
  G4_RETURN_IF_ERROR(CheckModel(request.model()));
  G4_RETURN_IF_ERROR(CheckBounds(request));
  G4_ASSIGN_OR_RETURN(SamplingRequest sampling,
                      ToSamplingRequest(request.sampling(), request.stopping()));
  G4_ASSIGN_OR_RETURN(SamplingParams params,
                      ResolveSamplingParams(sampling, options_.generation_config,
                                            options_.vocab_size));
  if (request.has_structured_output()) {
    G4_RETURN_IF_ERROR(grammar::ValidateStructuredOutput(request.structured_output()));
  }
  Prepared prepared;
  prepared.stop = params.stop;
  if (!prepared.stop.empty() && codec_ == nullptr) {
    return absl::FailedPreconditionError("stop: stop strings need text; model has no tokenizer");
  }
  const int64_t max_context = fleet_->MaxContext();
  switch (request.prompt_case()) {
    case pb::GenerateRequest::kText: {
      if (codec_ == nullptr) return absl::FailedPreconditionError("model has no tokenizer");
      G4_ASSIGN_OR_RETURN(prepared.prompt, EncodePrompt(request.text(), max_context));
      break;
    }
    case pb::GenerateRequest::kChatJson: {
      if (codec_ == nullptr) return absl::FailedPreconditionError("model has no tokenizer");
      G4_ASSIGN_OR_RETURN(std::string text, codec_->RenderChat(request.chat_json()));
      // The template emits <bos> itself.
      G4_ASSIGN_OR_RETURN(prepared.prompt, EncodePrompt(text, max_context));
      break;
    }
    case pb::GenerateRequest::kTokenIds: {
      const auto& ids = request.token_ids().ids();
      if (max_context > 0 && ids.size() >= max_context) {
        return PromptTooLong(absl::StrCat(ids.size()), max_context);
      }
      for (int i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= options_.vocab_size) {
          return absl::InvalidArgumentError(absl::StrCat("token_ids[", i, "]: ", ids[i],
                                                         " is outside [0, ",
                                                         options_.vocab_size, ")"));
        }
      }
      prepared.prompt.assign(ids.begin(), ids.end());
      break;
    }
    case pb::GenerateRequest::PROMPT_NOT_SET:
      return absl::InvalidArgumentError("prompt: one of text, token_ids, chat_json is required");
  }
  if (prepared.prompt.empty()) return absl::InvalidArgumentError("prompt: empty (no tokens)");
  if (max_context > 0 && static_cast<int64_t>(prepared.prompt.size()) >= max_context) {
    return PromptTooLong(absl::StrCat(prepared.prompt.size()), max_context);
  }
  return prepared;
}

bool GenerationService::SetWorkerCall(const std::string& key, grpc::ClientContext* call,
                                      int replica,
                                      std::shared_ptr<std::atomic<int64_t>>* progress) {
  absl::MutexLock lock(&mu_);
  InFlight& f = in_flight_[key];
  f.worker = call;
  if (call != nullptr) {
    f.replica = replica;
    f.evacuated = false;
    f.progress->store(absl::ToUnixNanos(absl::Now()));
  }
  if (progress != nullptr) *progress = f.progress;
  return !f.aborted && !shutdown_;
}

bool GenerationService::ShuttingDown() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

bool GenerationService::Evacuated(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(key);
  return it != in_flight_.end() && it->second.evacuated;
}

bool GenerationService::Aborted(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(key);
  return it != in_flight_.end() && it->second.aborted;
}

absl::Status GenerationService::Generate(const std::string& caller,
                                         const pb::GenerateRequest& request,
                                         const GenerationSink& sink) {
  G4_ASSIGN_OR_RETURN(Prepared prepared, Prepare(request));
  return Generate(caller, request, prepared, sink);
}

absl::Status GenerationService::Generate(const std::string& caller,
                                         const pb::GenerateRequest& request,
                                         const Prepared& prepared, const GenerationSink& sink,
                                         std::string* assigned_id) {
  const std::string request_id =
      request.request_id().empty() ? RandomId("g4-") : request.request_id();
  if (assigned_id != nullptr) *assigned_id = request_id;
  const std::string key = InFlightKey(caller, request_id);
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
    if (draining_) {
      return absl::UnavailableError("coordinator is draining (shutting down); try another one");
    }
    auto [it, inserted] = in_flight_.try_emplace(key);
    if (!inserted) {
      return absl::AlreadyExistsError(
          absl::StrCat("request_id: '", request_id, "' is already in flight"));
    }
    it->second.sink = &sink;
  }
  Trace trace;
  trace.arrival = sink.arrival.value_or(absl::Now());
  absl::Status status = Run(key, request_id, request, prepared, sink, &trace);
  RecordEnd(trace, status, static_cast<int64_t>(prepared.prompt.size()));
  {
    absl::MutexLock lock(&mu_);
    in_flight_.erase(key);
  }
  return status;
}

void GenerationService::OnTokensRelayed(Trace* trace, int tokens, int64_t prompt_tokens) {
  if (tokens <= 0) return;
  const absl::Time now = absl::Now();
  CoordinatorMetrics* m = options_.metrics;
  if (!trace->first_token.has_value()) {
    trace->first_token = now;
    if (m != nullptr) {
      m->ObserveTtft(absl::ToDoubleSeconds(now - trace->arrival));
      m->AddPromptTokens(prompt_tokens);  // prefilled
    }
  } else if (m != nullptr) {
    // Per relayed chunk (vLLM: per engine iteration of the request).
    m->ObserveInterTokenLatency(absl::ToDoubleSeconds(now - trace->last_token));
  }
  trace->last_token = now;
  trace->generation_tokens += tokens;
  if (m != nullptr) m->AddGenerationTokens(tokens);
}

void GenerationService::RecordEnd(const Trace& trace, const absl::Status& status,
                                  int64_t prompt_tokens) {
  CoordinatorMetrics* m = options_.metrics;
  if (m == nullptr) return;
  const bool cancelled = status.code() == absl::StatusCode::kCancelled;
  if (!status.ok() && !cancelled) {
    m->RequestFailed(RequestFailureReason(status.code()));
    return;
  }
  // A client that went away counts as an abort, as in vLLM.
  FinishedReason reason = FinishedReason::kAbort;
  if (status.ok() && trace.finish == pb::FINISH_REASON_STOP) reason = FinishedReason::kStop;
  if (status.ok() && trace.finish == pb::FINISH_REASON_LENGTH) reason = FinishedReason::kLength;
  m->RequestFinished(reason);
  m->ObserveE2e(absl::ToDoubleSeconds(absl::Now() - trace.arrival));
  m->ObserveRequestPromptTokens(prompt_tokens);
  m->ObserveRequestGenerationTokens(trace.generation_tokens);
  if (trace.first_token.has_value()) {
    const double decode = absl::ToDoubleSeconds(trace.last_token - *trace.first_token);
    m->ObserveDecodeTime(decode);
    if (trace.generation_tokens > 1) {
      m->ObserveTimePerOutputToken(decode / static_cast<double>(trace.generation_tokens - 1));
    }
  }
}

absl::Status GenerationService::Run(const std::string& key, const std::string& request_id,
                                    const pb::GenerateRequest& request, const Prepared& prepared,
                                    const GenerationSink& sink, Trace* trace) {
  wpb::WorkerGenerateRequest worker_request;
  // The engine's ids are global: the worker gets one of its own that no caller can know.
  worker_request.set_request_id(RandomId("g4w-"));
  worker_request.mutable_prompt_token_ids()->Add(prepared.prompt.begin(), prepared.prompt.end());
  *worker_request.mutable_sampling() = request.sampling();
  *worker_request.mutable_stopping() = request.stopping();
  worker_request.set_priority(request.priority());
  if (request.has_structured_output()) {
    *worker_request.mutable_structured_output() = request.structured_output();
  }

  const int prompt_tokens = static_cast<int>(prepared.prompt.size());
  // One detokenizer and stop matcher for the whole request: a migrated request continues their
  // state, so text held back (a partial character, a possible stop) is neither lost nor repeated.
  std::unique_ptr<StreamDecoder> decoder;
  if (codec_ != nullptr) {
    G4_ASSIGN_OR_RETURN(decoder, codec_->NewDecoder());
  }
  std::optional<StopStringMatcher> matcher;
  if (!prepared.stop.empty()) matcher.emplace(prepared.stop);
  std::vector<int32_t> relayed;  // tokens the client has received (resumed on a migration)
  int completion_tokens = 0;
  absl::flat_hash_set<int> tried;
  absl::Status last_error;
  std::optional<MigrationReason> pending_migration;  // why the last attempt ended
  for (int attempt = 0; attempt <= std::max(0, options_.migration_limit); ++attempt) {
    absl::StatusOr<Router::Lease> lease = router_->Acquire(tried);
    if (!lease.ok()) {
      if (attempt == 0) return lease.status();
      return absl::Status(last_error.code(),
                          absl::StrCat(last_error.message(), "; no other replica can continue "
                                       "the request (", lease.status().message(), ")"));
    }
    const ReplicaEndpoint& replica = lease->replica();
    tried.insert(replica.index);
    if (pending_migration.has_value()) {  // counted once another replica took it
      if (options_.metrics != nullptr) {
        options_.metrics->RequestMigrated(MigrationReasonName(*pending_migration));
      }
      std::cerr << "g4-coordinator: request " << request_id << ": " << last_error << " after "
                << relayed.size() << " tokens; continuing on another replica (replica "
                << replica.index << ", " << MigrationReasonName(*pending_migration)
                << ", attempt " << attempt + 1 << ")" << std::endl;
      pending_migration.reset();
    }
    SetResumedTokens(relayed, &worker_request);

    grpc::ClientContext call;
    if (sink.deadline.has_value()) call.set_deadline(absl::ToChronoTime(*sink.deadline));
    std::shared_ptr<std::atomic<int64_t>> progress;
    if (!SetWorkerCall(key, &call, replica.index, &progress)) call.TryCancel();
    auto stub = wpb::Worker::NewStub(replica.leader);
    std::unique_ptr<grpc::ClientReader<wpb::WorkerGenerateResponse>> reader =
        stub->Generate(&call, worker_request);

    wpb::WorkerGenerateResponse message;
    bool finished = false;    // final response written
    bool client_gone = false;
    while (!finished && reader->Read(&message)) {
      progress->store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
      if (message.has_queue_seconds() && !trace->queue_observed) {
        trace->queue_observed = true;
        if (options_.metrics != nullptr) {
          options_.metrics->ObserveQueueTime(message.queue_seconds());
        }
      }
      pb::GenerateResponse out;
      out.set_request_id(request_id);
      const bool worker_final = message.finish_reason() != pb::FINISH_REASON_UNSPECIFIED;
      bool stopped = false;
      absl::Status token_status;
      for (int i = 0; i < message.tokens_size() && !stopped; ++i) {
        const pb::TokenOutput& token = message.tokens(i);
        ++completion_tokens;
        pb::TokenOutput* t = out.add_tokens();
        *t = token;
        if (codec_ == nullptr) continue;
        for (pb::TokenLogprob& alt : *t->mutable_top_logprobs()) {
          if (alt.token().empty()) alt.set_token(codec_->TokenText(alt.token_id()));
        }
        // The text of the stop token that ended generation is not part of the output.
        const bool is_stop_token = worker_final && i == message.tokens_size() - 1 &&
                                   message.finish_reason() == pb::FINISH_REASON_STOP &&
                                   message.matched_stop_token() == token.token_id() &&
                                   message.matched_stop_token() != 0;
        if (is_stop_token) continue;
        absl::StatusOr<std::string> chunk = decoder->Feed(token.token_id());
        if (!chunk.ok()) {
          token_status = absl::InternalError(absl::StrCat(
              "replica ", replica.index, " returned a bad token: ", chunk.status().message()));
          break;
        }
        if (!matcher.has_value()) {
          out.mutable_text()->append(*chunk);
          continue;
        }
        StopStringMatcher::Update update = matcher->Append(*chunk);
        out.mutable_text()->append(update.text);
        if (update.stopped) {
          stopped = true;
          out.set_matched_stop(prepared.stop[*update.stop_index]);
        }
      }
      if (!token_status.ok()) {
        call.TryCancel();
        reader->Finish();
        SetWorkerCall(key, nullptr);
        return token_status;
      }
      if (!stopped && worker_final && codec_ != nullptr) {
        std::string tail = decoder->Flush();
        if (matcher.has_value()) {
          StopStringMatcher::Update update = matcher->Append(tail);
          out.mutable_text()->append(update.text);
          if (update.stopped) {
            stopped = true;
            out.set_matched_stop(prepared.stop[*update.stop_index]);
          } else {
            out.mutable_text()->append(matcher->Flush());
          }
        } else {
          out.mutable_text()->append(tail);
        }
      }
      if (stopped) {
        call.TryCancel();  // the leader aborts the sequence
        out.set_finish_reason(pb::FINISH_REASON_STOP);
        pb::Usage* usage = out.mutable_usage();
        usage->set_prompt_tokens(prompt_tokens);
        usage->set_completion_tokens(completion_tokens);
        if (worker_final) usage->set_cached_prompt_tokens(message.usage().cached_prompt_tokens());
        finished = true;
      } else if (worker_final) {
        out.set_finish_reason(message.finish_reason());
        if (message.finish_reason() == pb::FINISH_REASON_STOP &&
            message.matched_stop_token() != 0) {
          out.set_matched_stop(codec_ != nullptr
                                   ? codec_->TokenText(message.matched_stop_token())
                                   : absl::StrCat(message.matched_stop_token()));
        }
        *out.mutable_usage() = message.usage();
        if (out.usage().prompt_tokens() == 0) out.mutable_usage()->set_prompt_tokens(prompt_tokens);
        // Counted here across attempts: every token the client got, once.
        if (out.usage().completion_tokens() == 0 || attempt > 0) {
          out.mutable_usage()->set_completion_tokens(completion_tokens);
        }
        finished = true;
      }
      if (out.tokens_size() == 0 && out.text().empty() && !finished) continue;
      if (finished) trace->finish = out.finish_reason();
      OnTokensRelayed(trace, out.tokens_size(), prompt_tokens);
      if (!sink.write(out)) {
        client_gone = true;
        call.TryCancel();
        break;
      }
      for (const pb::TokenOutput& t : out.tokens()) relayed.push_back(t.token_id());
    }
    const grpc::Status worker_status = reader->Finish();
    const bool aborted = !SetWorkerCall(key, nullptr) && Aborted(key);
    if (finished) return absl::OkStatus();
    if (client_gone || SinkCancelled(sink)) {
      return absl::CancelledError("client cancelled the request");
    }
    if (aborted) {
      pb::GenerateResponse out;
      out.set_request_id(request_id);
      if (matcher.has_value() && decoder != nullptr) {
        out.set_text(matcher->Append(decoder->Flush()).text + matcher->Flush());
      } else if (decoder != nullptr) {
        out.set_text(decoder->Flush());
      }
      out.set_finish_reason(pb::FINISH_REASON_ABORTED);
      trace->finish = pb::FINISH_REASON_ABORTED;
      out.mutable_usage()->set_prompt_tokens(prompt_tokens);
      out.mutable_usage()->set_completion_tokens(completion_tokens);
      sink.write(out);
      return absl::OkStatus();
    }
    if (ShuttingDown()) {
      return absl::UnavailableError(
          "coordinator shut down before the request finished; retry on another coordinator");
    }
    // Tokens counted but not relayed (the client never saw them) are generated again.
    completion_tokens = static_cast<int>(relayed.size());
    const bool evacuated = Evacuated(key);
    if (worker_status.ok() && !evacuated) {
      return absl::InternalError(absl::StrCat("replica ", replica.index,
                                              " ended the stream without a finish_reason"));
    }
    absl::Status error =
        evacuated ? absl::UnavailableError("taken out of service by the health check")
                  : FromGrpcStatus(worker_status);
    const std::optional<MigrationReason> migration = MigrationFor(error, evacuated);
    if (!migration.has_value()) {
      if (error.code() == absl::StatusCode::kDeadlineExceeded ||
          error.code() == absl::StatusCode::kResourceExhausted ||
          error.code() == absl::StatusCode::kInvalidArgument) {
        return error;
      }
      return Annotate(error, absl::StrCat("replica ", replica.index));
    }
    last_error = Annotate(error, absl::StrCat("replica ", replica.index));
    pending_migration = migration;
  }
  return absl::Status(last_error.code(),
                      absl::StrCat(last_error.message(), "; gave up after ",
                                   options_.migration_limit, " migrations"));
}

bool GenerationService::Abort(const std::string& caller, const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(InFlightKey(caller, request_id));
  if (it == in_flight_.end()) return false;
  it->second.aborted = true;
  if (it->second.worker != nullptr) it->second.worker->TryCancel();
  return true;
}

}  // namespace g4
