#include "coordinator/api/tokenization_pool.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace g4 {

TokenizationPool::TokenizationPool(TokenizationPoolOptions options) : options_(options) {
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

TokenizationPool::~TokenizationPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::StatusOr<std::vector<int32_t>> TokenizationPool::Run(Work work) {
  Task task{std::move(work), absl::UnknownError("not run"), false};
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("coordinator is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tokenization queue full: ", queue_.size(), " prompts waiting to be tokenized"));
  }
  queue_.push_back(&task);
  mu_.Await(absl::Condition(&task.done));
  return std::move(task.result);
}

int TokenizationPool::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

void TokenizationPool::Loop() {
  if (options_.nice != 0) {
    // Linux applies a nice value to one thread when given its thread id (not POSIX, documented
    // in setpriority(2)). A failure leaves the thread at the default priority.
    const pid_t tid = static_cast<pid_t>(syscall(SYS_gettid));
    errno = 0;
    const int current = getpriority(PRIO_PROCESS, tid);
    if (errno == 0 && setpriority(PRIO_PROCESS, tid, current + options_.nice) != 0) {
      std::cerr << "g4-coordinator: tokenization thread: setpriority failed (errno " << errno
                << "); it runs at the default priority" << std::endl;
    }
  }
  absl::MutexLock lock(&mu_);
  while (true) {
    mu_.Await(absl::Condition(
        +[](TokenizationPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
          return p->stop_ || !p->queue_.empty();
        },
        this));
    if (queue_.empty()) return;  // stop_ and nothing left
    Task* task = queue_.front();
    queue_.pop_front();
    mu_.Unlock();
    absl::StatusOr<std::vector<int32_t>> result = task->work();
    mu_.Lock();
    task->result = std::move(result);
    task->done = true;
  }
}

}  // namespace g4
