#include "tools/load_generator/load_runner.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include "tools/load_generator/arrival_schedule.h"

namespace g4::load {

namespace {

using Clock = std::chrono::steady_clock;

// Runs tasks on threads; starts a new thread whenever no idle one can take a task, so the pool
// grows to the largest number of tasks in flight and a slow request never delays a later one.
class ElasticPool {
 public:
  ~ElasticPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  void Submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    if (static_cast<int>(tasks_.size()) > idle_) {
      threads_.emplace_back([this] { Work(); });
    } else {
      cv_.notify_one();
    }
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ++idle_;
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      --idle_;
      if (tasks_.empty()) return;  // stop_ and drained
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
  int idle_ = 0;
  bool stop_ = false;
};

// Limits requests in flight; limit 0 means no limit.
class Gate {
 public:
  explicit Gate(int limit) : limit_(limit) {}
  void Acquire() {
    if (limit_ <= 0) return;
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return in_flight_ < limit_; });
    ++in_flight_;
  }
  void Release() {
    if (limit_ <= 0) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --in_flight_;
    }
    cv_.notify_one();
  }

 private:
  const int limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;
};

}  // namespace

std::vector<RequestSpec> MakeRequests(const LoadOptions& options) {
  std::vector<RequestSpec> specs(options.num_requests);
  // A stream independent of the arrival schedule's (which uses options.seed directly).
  std::mt19937_64 rng(options.seed ^ 0x9e3779b97f4a7c15ULL);
  const uint64_t span = static_cast<uint64_t>(options.vocab - options.min_token_id);
  for (int i = 0; i < options.num_requests; ++i) {
    RequestSpec& spec = specs[i];
    spec.index = i;
    spec.max_tokens = options.output_len;
    if (options.prompt_text) {
      spec.prompt_text = *options.prompt_text;
      continue;
    }
    if (!options.prompts.empty()) {
      const Prompt& p = options.prompts[i % options.prompts.size()];
      if (const auto* text = std::get_if<std::string>(&p)) {
        spec.prompt_text = *text;
      } else {
        spec.prompt_ids = std::get<std::vector<int32_t>>(p);
        spec.prompt_len = static_cast<int>(spec.prompt_ids.size());
      }
      continue;
    }
    spec.prompt_len = options.prompt_len;
    spec.prompt_ids.resize(options.prompt_len);
    for (int32_t& id : spec.prompt_ids) {
      id = options.min_token_id + static_cast<int32_t>(rng() % span);
    }
  }
  return specs;
}

RunOutcome RunLoad(const LoadOptions& options, LoadClient& client) {
  const std::vector<RequestSpec> specs = MakeRequests(options);
  const std::vector<double> offsets =
      PoissonArrivalOffsets(options.num_requests, options.request_rate, options.seed);
  RunOutcome outcome;
  outcome.results.resize(specs.size());
  Gate gate(options.concurrency);
  const Clock::time_point start = Clock::now();
  {
    ElasticPool pool;
    for (size_t i = 0; i < specs.size(); ++i) {
      std::this_thread::sleep_until(
          start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(offsets[i])));
      gate.Acquire();
      pool.Submit([&, i] {
        const double start_s = std::chrono::duration<double>(Clock::now() - start).count();
        outcome.results[i] = client.Send(specs[i]);
        outcome.results[i].start_s = start_s;
        gate.Release();
      });
    }
  }  // joins every request
  outcome.duration_s = std::chrono::duration<double>(Clock::now() - start).count();
  return outcome;
}

}  // namespace g4::load
