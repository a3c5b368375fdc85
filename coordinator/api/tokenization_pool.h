// Tokenization off the serving threads. Encoding a 1 MB prompt takes a quarter of a second of
// one core; on the threads that relay other requests' tokens (gRPC handlers, HTTP connection
// threads) that CPU time competes with them directly, and several large prompts at once occupy
// every core. The pool runs tokenization on a fixed number of its own threads, at a lower
// scheduling priority (a positive nice value, per thread on Linux), so relaying tokens — short
// bursts of work — always wins the CPU, and at most `threads` prompts tokenize at once. The
// caller blocks (sleeping, no CPU) until its work is done. A full queue is RESOURCE_EXHAUSTED.
//
// Used by GenerationService::Prepare (coordinator/api/generation.h) for text and chat prompts.
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_API_TOKENIZATION_POOL_H_
#define G4SERVE_COORDINATOR_API_TOKENIZATION_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace g4 {

struct TokenizationPoolOptions {
  int threads = 1;       // prompts tokenized at once; >= 1
  int max_queue = 256;   // prompts waiting for a thread beyond this: RESOURCE_EXHAUSTED
  int nice = 10;         // added to the pool threads' nice value (0: same priority)
};

class TokenizationPool {
 public:
  using Work = std::function<absl::StatusOr<std::vector<int32_t>>()>;

  explicit TokenizationPool(TokenizationPoolOptions options);
  ~TokenizationPool();  // finishes queued work, joins the threads

  // Runs `work` on a pool thread and returns its result. RESOURCE_EXHAUSTED when max_queue
  // prompts are already waiting; UNAVAILABLE after shutdown began.
  absl::StatusOr<std::vector<int32_t>> Run(Work work);

  const TokenizationPoolOptions& options() const { return options_; }
  // Prompts waiting for a thread now.
  int queued() const;

 private:
  struct Task {
    Work work;
    absl::StatusOr<std::vector<int32_t>> result;
    bool done = false;
  };
  void Loop();

  const TokenizationPoolOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Task*> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_API_TOKENIZATION_POOL_H_
