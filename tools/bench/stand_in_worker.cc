#include "tools/bench/stand_in_worker.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace g4 {

namespace wpb = ::g4serve::worker::v1;

absl::StatusOr<std::unique_ptr<StandInWorker>> StandInWorker::Start(StandInWorkerOptions options) {
  if (options.vocab_size <= options.first_token_id || options.first_token_id < 0) {
    return absl::InvalidArgumentError(absl::StrCat("stand-in worker: token ids [",
                                                   options.first_token_id, ", ",
                                                   options.vocab_size, ") are empty"));
  }
  std::unique_ptr<StandInWorker> w(new StandInWorker(std::move(options)));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(w->options_.host, ":", w->options_.port),
                           w->options_.tls != nullptr ? w->options_.tls->ServerCredentials()
                                                      : grpc::InsecureServerCredentials(),
                           &w->port_);
  builder.RegisterService(w.get());
  w->server_ = builder.BuildAndStart();
  if (w->server_ == nullptr || w->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("stand-in worker: cannot listen on ", w->options_.host, ":", w->options_.port));
  }
  if (w->options_.coordinator.empty()) return w;
  auto fleet = wpb::Fleet::NewStub(
      w->options_.tls != nullptr
          ? w->options_.tls->Dial(w->options_.coordinator, grpc::ChannelArguments())
          : grpc::CreateChannel(w->options_.coordinator, grpc::InsecureChannelCredentials()));
  wpb::RegisterRequest request;
  request.set_address(w->address());
  request.mutable_device()->set_kind("cpu");
  request.mutable_device()->set_name("stand-in");
  request.mutable_device()->set_memory_bytes(int64_t{64} << 30);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (true) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    wpb::RegisterResponse response;
    const grpc::Status s = fleet->Register(&ctx, request, &response);
    if (s.ok()) {
      w->worker_id_ = response.worker_id();
      return w;
    }
    const bool retry = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (!retry || absl::Now() > deadline) {
      return absl::UnavailableError(absl::StrCat("stand-in worker: Register with ",
                                                 w->options_.coordinator, ": ",
                                                 s.error_message()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
}

StandInWorker::~StandInWorker() { Stop(); }

void StandInWorker::Stop() {
  stopping_ = true;
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
    server_.reset();
  }
}

std::string StandInWorker::address() const { return absl::StrCat(options_.host, ":", port_); }

int32_t StandInWorker::TokenAt(int64_t i) const {
  const int64_t range = options_.vocab_size - options_.first_token_id;
  return static_cast<int32_t>(options_.first_token_id + i % range);
}

grpc::Status StandInWorker::Load(grpc::ServerContext*, const wpb::LoadRequest* request,
                                 wpb::LoadResponse* response) {
  absl::MutexLock lock(&mu_);
  store_prefix_ = request->store_prefix();
  response->set_load_seconds(0);
  return grpc::Status::OK;
}

grpc::Status StandInWorker::Health(grpc::ServerContext*, const wpb::HealthRequest*,
                                   wpb::HealthResponse* response) {
  absl::MutexLock lock(&mu_);
  response->set_state(store_prefix_.empty() ? wpb::WORKER_STATE_IDLE : wpb::WORKER_STATE_READY);
  response->set_store_prefix(store_prefix_);
  response->set_running(running_.load());
  return grpc::Status::OK;
}

grpc::Status StandInWorker::Unload(grpc::ServerContext*, const wpb::UnloadRequest*,
                                   wpb::UnloadResponse*) {
  absl::MutexLock lock(&mu_);
  store_prefix_.clear();
  return grpc::Status::OK;
}

grpc::Status StandInWorker::Abort(grpc::ServerContext*, const wpb::WorkerAbortRequest*,
                                  wpb::WorkerAbortResponse* response) {
  response->set_found(false);  // streams end when their call is cancelled
  return grpc::Status::OK;
}

grpc::Status StandInWorker::Generate(grpc::ServerContext* context,
                                     const wpb::WorkerGenerateRequest* request,
                                     grpc::ServerWriter<wpb::WorkerGenerateResponse>* writer) {
  const int total = request->stopping().has_max_tokens() ? request->stopping().max_tokens()
                                                         : options_.default_max_tokens;
  if (total < 1) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "max_tokens must be >= 1");
  const int start = request->resume_output_token_ids_size();
  if (start >= total) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "resume_output_token_ids: the request already finished there");
  }
  ++running_;
  struct Done {
    std::atomic<int>* running;
    ~Done() { --*running; }
  } done{&running_};
  // Tokens on a fixed schedule (no drift): token k of this call at first + k * itl.
  const absl::Time first = absl::Now() + options_.itl;
  for (int i = start; i < total; ++i) {
    const absl::Time due = first + (i - start) * options_.itl;
    while (absl::Now() < due) {
      if (context->IsCancelled() || stopping_) return grpc::Status::CANCELLED;
      absl::SleepFor(std::min(due - absl::Now(), absl::Milliseconds(50)));
    }
    if (context->IsCancelled() || stopping_) return grpc::Status::CANCELLED;
    if (std::chrono::system_clock::now() >= context->deadline()) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded");
    }
    wpb::WorkerGenerateResponse m;
    m.add_tokens()->set_token_id(TokenAt(i));
    if (i == start) m.set_queue_seconds(0);
    if (i + 1 == total) {
      m.set_finish_reason(g4serve::v1::FINISH_REASON_LENGTH);
      m.mutable_usage()->set_prompt_tokens(request->prompt_token_ids_size());
      m.mutable_usage()->set_completion_tokens(total);
    }
    if (!writer->Write(m)) return grpc::Status::CANCELLED;
    tokens_streamed_.fetch_add(1, std::memory_order_relaxed);
  }
  return grpc::Status::OK;
}

}  // namespace g4
