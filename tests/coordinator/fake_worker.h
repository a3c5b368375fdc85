// An in-process test double of the Worker gRPC service on a loopback port: scripted Load results,
// Health answers (or silence), and Generate streams.
#ifndef G4SERVE_TESTS_COORDINATOR_FAKE_WORKER_H_
#define G4SERVE_TESTS_COORDINATOR_FAKE_WORKER_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "g4serve/worker/v1/worker.grpc.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/server_context.h"

namespace g4::testing {

namespace wpb = ::g4serve::worker::v1;

class FakeWorker final : public wpb::Worker::Service {
 public:
  FakeWorker() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeWorker() override { Stop(); }

  void Stop() {
    stopping_ = true;
    if (server_ != nullptr) {
      server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Milliseconds(200)));
      server_->Wait();
      server_.reset();
    }
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  wpb::RegisterRequest Registration() const {
    wpb::RegisterRequest r;
    r.set_address(address());
    r.mutable_device()->set_kind("cpu");
    r.mutable_device()->set_memory_bytes(int64_t{1} << 30);
    return r;
  }

  // --- behaviour knobs ---
  std::atomic<bool> load_fails{false};
  std::atomic<bool> health_hangs{false};  // a stalled process: counting streams pause too
  std::atomic<bool> health_reports_failed{false};
  std::atomic<bool> health_reports_idle{false};  // as a restarted process would (no load)
  std::atomic<bool> draining{false};             // Health says draining (SIGTERM)
  std::atomic<bool> unload_fails{false};
  std::atomic<int> running{0};                   // Health's running count while READY
  std::atomic<bool> generate_unavailable{false};  // Generate fails at once with UNAVAILABLE
  std::atomic<bool> endless{false};               // Generate streams until cancelled
  std::atomic<bool> generate_queue_full{false};   // Generate fails at once: RESOURCE_EXHAUSTED
  absl::Duration step_delay = absl::Milliseconds(5);
  // > 0: Generate behaves like an engine continuing a sequence: token ids 100, 101, ... up to
  // `counting_tokens` of them, one per message, starting after the request's
  // resume_output_token_ids; the last message has LENGTH and usage.
  std::atomic<int> counting_tokens{0};
  // >= 0: Generate fails with UNAVAILABLE ("replica failed") after this many messages.
  std::atomic<int> fail_after{-1};
  // Generate streams one message per entry; the last has finish_reason (+ matched stop token).
  std::vector<std::vector<int>> script = {{10}, {11, 12}, {13}};
  g4serve::v1::FinishReason finish = g4serve::v1::FINISH_REASON_LENGTH;
  int matched_stop_token = 0;
  // Set on the first Generate message (WorkerGenerateResponse.queue_seconds); negative: unset.
  double queue_seconds = 0.25;

  // Engine stats Health reports while READY (running, waiting, kv usage, cumulative counters).
  void SetHealthStats(const wpb::HealthResponse& stats) {
    absl::MutexLock lock(&mu);
    health_stats_ = stats;
  }

  // --- observations ---
  std::atomic<int> generate_calls{0};
  std::atomic<int> unload_calls{0};
  std::atomic<bool> generate_cancelled{false};
  std::atomic<bool> generate_done{false};
  absl::Mutex mu;
  std::vector<wpb::LoadRequest> loads ABSL_GUARDED_BY(mu);
  wpb::WorkerGenerateRequest last_generate ABSL_GUARDED_BY(mu);

  grpc::Status Load(grpc::ServerContext*, const wpb::LoadRequest* request,
                    wpb::LoadResponse* response) override {
    {
      absl::MutexLock lock(&mu);
      loads.push_back(*request);
    }
    if (load_fails) return grpc::Status(grpc::StatusCode::INTERNAL, "out of cheese");
    {
      absl::MutexLock lock(&mu);
      store_prefix_ = request->store_prefix();
    }
    health_reports_idle = false;
    response->set_weight_bytes(123);
    return grpc::Status::OK;
  }

  grpc::Status Unload(grpc::ServerContext*, const wpb::UnloadRequest*,
                      wpb::UnloadResponse*) override {
    ++unload_calls;
    if (unload_fails) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot unload");
    health_reports_failed = false;  // the failed replica is torn down: IDLE
    absl::MutexLock lock(&mu);
    store_prefix_.clear();
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* context, const wpb::HealthRequest*,
                      wpb::HealthResponse* response) override {
    while (health_hangs && !context->IsCancelled() && !stopping_) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    absl::MutexLock lock(&mu);
    if (health_reports_failed) {
      response->set_state(wpb::WORKER_STATE_FAILED);
      response->set_error("gloo: peer lost");
      response->set_store_prefix(store_prefix_);
    } else if (health_reports_idle || store_prefix_.empty()) {
      response->set_state(wpb::WORKER_STATE_IDLE);
    } else {
      *response = health_stats_;
      response->set_state(wpb::WORKER_STATE_READY);
      response->set_store_prefix(store_prefix_);
      if (running > 0) response->set_running(running);
    }
    response->set_draining(draining);
    return grpc::Status::OK;
  }

  grpc::Status Generate(grpc::ServerContext* context, const wpb::WorkerGenerateRequest* request,
                        grpc::ServerWriter<wpb::WorkerGenerateResponse>* writer) override {
    ++generate_calls;
    {
      absl::MutexLock lock(&mu);
      last_generate = *request;
    }
    struct Done {
      std::atomic<bool>* flag;
      ~Done() { *flag = true; }
    } done{&generate_done};
    if (generate_unavailable) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "rank lost");
    if (generate_queue_full) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "queue full: 4 requests waiting");
    }
    if (counting_tokens > 0) return Count(context, *request, writer);
    int completion = 0;
    for (size_t i = 0; endless || i < script.size(); ++i) {
      absl::SleepFor(step_delay);
      if (context->IsCancelled()) {
        generate_cancelled = true;
        return grpc::Status::CANCELLED;
      }
      wpb::WorkerGenerateResponse m;
      const std::vector<int> ids = endless ? std::vector<int>{10} : script[i];
      for (int id : ids) m.add_tokens()->set_token_id(id);
      completion += static_cast<int>(ids.size());
      if (i == 0 && queue_seconds >= 0) m.set_queue_seconds(queue_seconds);
      const bool last = !endless && i + 1 == script.size();
      if (last) {
        m.set_finish_reason(finish);
        m.set_matched_stop_token(matched_stop_token);
        m.mutable_usage()->set_prompt_tokens(request->prompt_token_ids_size());
        m.mutable_usage()->set_completion_tokens(completion);
      }
      if (!writer->Write(m)) {
        generate_cancelled = true;
        return grpc::Status::CANCELLED;
      }
    }
    return grpc::Status::OK;
  }

 private:
  grpc::Status Count(grpc::ServerContext* context, const wpb::WorkerGenerateRequest& request,
                     grpc::ServerWriter<wpb::WorkerGenerateResponse>* writer) {
    const int total = counting_tokens;
    int sent = 0;
    for (int i = request.resume_output_token_ids_size(); i < total; ++i) {
      absl::SleepFor(step_delay);
      // A stalled process (health_hangs): its streams stop too, until it is cancelled.
      while (health_hangs && !context->IsCancelled() && !stopping_) {
        absl::SleepFor(absl::Milliseconds(10));
      }
      if (context->IsCancelled()) {
        generate_cancelled = true;
        return grpc::Status::CANCELLED;
      }
      if (fail_after >= 0 && sent == fail_after) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "replica failed: gloo: peer lost");
      }
      wpb::WorkerGenerateResponse m;
      m.add_tokens()->set_token_id(100 + i);
      if (i + 1 == total) {
        m.set_finish_reason(g4serve::v1::FINISH_REASON_LENGTH);
        m.mutable_usage()->set_prompt_tokens(request.prompt_token_ids_size());
        m.mutable_usage()->set_completion_tokens(total);
      }
      if (!writer->Write(m)) {
        generate_cancelled = true;
        return grpc::Status::CANCELLED;
      }
      ++sent;
    }
    return grpc::Status::OK;
  }

  int port_ = 0;
  std::atomic<bool> stopping_{false};
  wpb::HealthResponse health_stats_ ABSL_GUARDED_BY(mu);
  std::string store_prefix_ ABSL_GUARDED_BY(mu);  // of the last Load; empty: nothing loaded
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_COORDINATOR_FAKE_WORKER_H_
