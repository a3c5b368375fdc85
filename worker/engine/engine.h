// The replica leader's engine: accepts requests, runs the continuous-batching loop on its own
// thread, and reports tokens through each request's callback.
//
// Each step: schedule (scheduler.h) → broadcast the step descriptor to the other ranks over the
// control communicator → every rank runs the forward (ModelRunner) → the leader samples and
// reports. While idle the leader broadcasts a heartbeat every `heartbeat` so the followers'
// bounded waits do not expire. A failed step (a dead peer) fails every request with UNAVAILABLE
// and leaves the engine failed; Submit then returns that error.
//
// Thread-safe: Submit/Abort/Stats may be called from any thread.
#ifndef G4SERVE_WORKER_ENGINE_ENGINE_H_
#define G4SERVE_WORKER_ENGINE_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/comm/communicator.h"
#include "worker/engine/model_runner.h"
#include "worker/engine/scheduler.h"
#include "worker/engine/sequence.h"

namespace g4 {

struct EngineOptions {
  SchedulerOptions scheduler;
  int64_t max_model_len = 0;  // 0: the model's max_position_embeddings
  int max_queue = 1024;       // waiting requests beyond this: RESOURCE_EXHAUSTED
  absl::Duration heartbeat = absl::Milliseconds(200);
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  uint64_t steps = 0;
  bool failed = false;
};

class Engine {
 public:
  // `control` connects the replica's ranks for step descriptors; null for a single-rank replica.
  Engine(std::unique_ptr<ModelRunner> runner, Communicator* control, EngineOptions options);
  ~Engine();  // Shutdown()

  const ModelConfig& config() const { return runner_->model().config(); }
  int64_t max_model_len() const { return max_model_len_; }

  void Start();
  // Stops the loop, tells the followers to stop, fails what is left with ABORTED-like errors.
  void Shutdown();

  // Queues a request. InvalidArgument for an empty or too long prompt, ids outside the
  // vocabulary, or a duplicate id; ResourceExhausted when the queue is full; Unavailable after a
  // failure or shutdown.
  absl::Status Submit(EngineRequest request);
  // Aborts a queued or running request; its callback gets EngineFinish::kAborted. False if the
  // id is unknown (or already finished).
  bool Abort(const std::string& request_id);

  EngineStats Stats() const;

 private:
  void Loop();
  // Runs one step; false when the loop should end.
  bool Step();
  absl::Status Broadcast(StepDescriptor& step);
  void Finish(Sequence* s, EngineOutput out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailAll(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<ModelRunner> runner_;
  Communicator* control_;
  const EngineOptions options_;
  const int64_t max_model_len_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t steps_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::unique_ptr<Sequence>> sequences_ ABSL_GUARDED_BY(mu_);
  std::vector<Sequence*> running_ ABSL_GUARDED_BY(mu_);
  std::vector<Sequence*> waiting_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> freed_ ABSL_GUARDED_BY(mu_);  // caches to drop on every rank next step
};

// A non-leader rank: runs the leader's step descriptors until shutdown or failure.
class Follower {
 public:
  Follower(std::unique_ptr<ModelRunner> runner, Communicator* control)
      : runner_(std::move(runner)), control_(control) {}
  // Blocks. OK after a shutdown descriptor; the error of a failed collective or step otherwise.
  absl::Status Run();

 private:
  std::unique_ptr<ModelRunner> runner_;
  Communicator* control_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_ENGINE_H_
