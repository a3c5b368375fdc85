// The replica leader's engine: accepts requests, runs the continuous-batching loop on its own
// thread, and reports tokens through each request's callback.
//
// Each step: schedule (scheduler.h) → broadcast the step descriptor to the other ranks over the
// control communicator → every rank runs the forward (ModelRunner) → the leader samples and
// reports. While idle the leader broadcasts a heartbeat every `heartbeat` so the followers'
// bounded waits do not expire. A failed step (a dead peer) fails every request with UNAVAILABLE
// and leaves the engine failed; Submit then returns that error.
//
// Paged KV (default): the leader owns a KvBlockManager (two pools, prefix caching; see
// docs/kv_cache.md); the scheduler admits and allocates through it and preempts by recompute when
// a pool runs out; each chunk carries its block-table delta in the step descriptor, which every
// rank (leader included) applies to its mirrored tables. A finished, aborted or cancelled
// sequence's pages are freed at once and its caches dropped on every rank next step.
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
#include "worker/engine/step_cost_model.h"
#include "worker/engine/sequence.h"
#include "worker/kv_cache/kv_block_manager.h"

namespace g4 {

// Optional metrics hook (worker metrics, docs/metrics.md): told about every run step's forward
// on this rank. Called on the engine / follower thread; must be cheap and thread-safe.
class StepObserver {
 public:
  virtual ~StepObserver() = default;
  // `step` is a run step with at least one chunk; `forward` is the wall time of this rank's
  // ModelRunner::Execute for it (its tensor-parallel collectives included). Heartbeat,
  // shutdown and cache-drop-only steps are not reported.
  virtual void OnStep(const StepDescriptor& step, absl::Duration forward) = 0;
};

struct EngineOptions {
  // scheduler.cost: when it is the default (tokens only), the engine uses the analytic model of
  // the loaded config (StepCostModel::FromConfig) unless attention_cost_scale is 0.
  SchedulerOptions scheduler;
  double attention_cost_scale = 1.0;
  int64_t max_model_len = 0;  // 0: the model's max_position_embeddings
  int max_queue = 1024;       // waiting requests beyond this: RESOURCE_EXHAUSTED
  absl::Duration heartbeat = absl::Milliseconds(200);

  // KV cache. paged_kv false: contiguous per-sequence caches (no admission control).
  bool paged_kv = true;
  int block_size = 16;            // tokens per page, both pools
  // Pages per pool; 0 sizes the pool for scheduler.max_num_seqs sequences of
  // min(max_model_len, kDefaultTokensPerSeq) tokens each (sliding: the window's pages).
  int64_t num_global_pages = 0;
  int64_t num_sliding_pages = 0;
  bool enable_prefix_caching = true;
  static constexpr int64_t kDefaultTokensPerSeq = 2048;

  // Metrics hook; not owned, must outlive the engine. Null: none.
  StepObserver* step_observer = nullptr;
};

struct EngineStats {
  int running = 0;
  int waiting = 0;
  uint64_t steps = 0;
  bool failed = false;
  // Paged KV (all zero with contiguous caches).
  PoolUsage kv_global;
  PoolUsage kv_sliding;
  int kv_block_size = 0;  // tokens per page
  int64_t prefix_queried_tokens = 0;  // prompt (+ output, on recompute) tokens of admissions
  int64_t prefix_hit_tokens = 0;      // of those, adopted from the prefix cache
  uint64_t preemptions = 0;
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

  // Queues a request. InvalidArgument for an empty prompt, a prompt that cannot be scheduled
  // even alone (its tokens plus one generated token exceed the context or what the KV pools
  // hold; the message names the limit), ids outside the vocabulary, or a duplicate id;
  // ResourceExhausted when the queue is full; Unavailable after a failure or shutdown. A request
  // with resume_output (a migrated request) starts as a preempted sequence would: prompt + those
  // tokens are computed, then sampling continues with the sampler's state advanced over them
  // (step index, penalties, min/max_tokens), so greedy and seeded output equal an uninterrupted
  // run. InvalidArgument when they already end the request (a stop token, max_tokens) or fill
  // the context.
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
  // Hands `out` to the request's callback; the first output gets queue_seconds.
  void Report(Sequence* s, EngineOutput& out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailAll(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<ModelRunner> runner_;
  Communicator* control_;
  const EngineOptions options_;
  int64_t max_model_len_;  // capped so that one sequence fits the KV pools
  std::string kv_pool_limit_;  // non-empty when the pools set that cap: what they hold
  StepKvLayout kv_layout_;  // what the step descriptors announce (block_size 0: contiguous)
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
  std::unique_ptr<KvBlockManager> kv_ ABSL_GUARDED_BY(mu_);  // null: contiguous caches
  int64_t prefix_queried_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t prefix_hit_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t preemptions_ ABSL_GUARDED_BY(mu_) = 0;
  StepTimeEstimator step_time_;  // engine thread only
};

// A non-leader rank: runs the leader's step descriptors until shutdown or failure.
class Follower {
 public:
  // `observer` (optional, not owned, must outlive Run) is told about each run step.
  Follower(std::unique_ptr<ModelRunner> runner, Communicator* control,
           StepObserver* observer = nullptr)
      : runner_(std::move(runner)), control_(control), observer_(observer) {}
  // Blocks. OK after a shutdown descriptor; the error of a failed collective or step otherwise.
  absl::Status Run();

 private:
  std::unique_ptr<ModelRunner> runner_;
  Communicator* control_;
  StepObserver* observer_;
};

}  // namespace g4

#endif  // G4SERVE_WORKER_ENGINE_ENGINE_H_
