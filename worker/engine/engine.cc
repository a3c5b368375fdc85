#include "worker/engine/engine.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace g4 {

Engine::Engine(std::unique_ptr<ModelRunner> runner, Communicator* control, EngineOptions options)
    : runner_(std::move(runner)),
      control_(control),
      options_(options),
      max_model_len_(options.max_model_len > 0
                         ? std::min(options.max_model_len,
                                    runner_->model().config().max_position_embeddings)
                         : runner_->model().config().max_position_embeddings) {}

Engine::~Engine() { Shutdown(); }

void Engine::Start() { thread_ = std::thread([this] { Loop(); }); }

void Engine::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Engine::Submit(EngineRequest request) {
  const ModelConfig& c = config();
  if (request.prompt.empty()) return absl::InvalidArgumentError("prompt: no tokens");
  if (static_cast<int64_t>(request.prompt.size()) >= max_model_len_) {
    return absl::InvalidArgumentError(absl::StrCat("prompt: ", request.prompt.size(),
                                                   " tokens leave no room in the context of ",
                                                   max_model_len_, " tokens"));
  }
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= c.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt: token id ", id, " outside [0, ", c.vocab_size, ")"));
    }
  }
  absl::MutexLock lock(&mu_);
  if (!failure_.ok()) return absl::UnavailableError(absl::StrCat("engine failed: ", failure_.message()));
  if (stop_) return absl::UnavailableError("engine is shutting down");
  if (sequences_.contains(request.id)) {
    return absl::InvalidArgumentError(absl::StrCat("request_id \"", request.id, "\" is already running"));
  }
  if (static_cast<int>(waiting_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(
        absl::StrCat("queue full: ", waiting_.size(), " requests waiting"));
  }
  auto s = std::make_unique<Sequence>();
  s->seq_id = next_seq_id_++;
  s->arrival = s->seq_id;
  s->arrival_time = absl::Now();
  s->tokens = request.prompt;
  s->sampling = std::make_unique<SequenceSamplingState>(request.params, request.prompt);
  s->request = std::move(request);
  waiting_.push_back(s.get());
  std::string id = s->request.id;
  sequences_.emplace(std::move(id), std::move(s));
  return absl::OkStatus();
}

bool Engine::Abort(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  auto it = sequences_.find(request_id);
  if (it == sequences_.end()) return false;
  EngineOutput out;
  out.finish = EngineFinish::kAborted;
  Finish(it->second.get(), std::move(out));
  return true;
}

EngineStats Engine::Stats() const {
  absl::MutexLock lock(&mu_);
  return EngineStats{static_cast<int>(running_.size()), static_cast<int>(waiting_.size()), steps_,
                     !failure_.ok()};
}

// Reports the end of `s` and forgets it. Its caches are dropped on every rank next step.
void Engine::Finish(Sequence* s, EngineOutput out) {
  out.prompt_tokens = static_cast<int32_t>(s->num_prompt());
  out.completion_tokens = static_cast<int32_t>(s->tokens.size() - s->num_prompt());
  if (s->request.on_output) s->request.on_output(out);
  running_.erase(std::remove(running_.begin(), running_.end(), s), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), s), waiting_.end());
  if (s->num_computed > 0) freed_.push_back(s->seq_id);
  sequences_.erase(s->request.id);
}

void Engine::FailAll(const absl::Status& error) {
  failure_ = error;
  std::vector<Sequence*> all;
  for (auto& [id, s] : sequences_) all.push_back(s.get());
  for (Sequence* s : all) {
    EngineOutput out;
    out.finish = EngineFinish::kError;
    out.error = absl::UnavailableError(absl::StrCat("replica failed: ", error.message()));
    Finish(s, std::move(out));
  }
}

absl::Status Engine::Broadcast(StepDescriptor& step) {
  if (control_ == nullptr) return absl::OkStatus();
  std::string bytes = step.Serialize();
  return control_->BroadcastBytes(&bytes, /*root=*/0);
}

void Engine::Loop() {
  while (Step()) {
  }
}

bool Engine::Step() {
  StepDescriptor step;
  std::vector<ScheduledChunk> chunks;
  std::vector<std::string> chunk_ids;  // request ids, to find the sequences again after the forward
  {
    absl::MutexLock lock(&mu_);
    auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || !running_.empty() || !waiting_.empty() || !freed_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&has_work), options_.heartbeat);
    step.step = steps_++;
    if (stop_) {
      step.kind = StepDescriptor::Kind::kShutdown;
    } else if (!failure_.ok()) {
      return false;
    } else {
      step.freed = std::move(freed_);
      freed_.clear();
      chunks = ScheduleStep(options_.scheduler, running_, waiting_);
      step.kind = chunks.empty() && step.freed.empty() ? StepDescriptor::Kind::kHeartbeat
                                                       : StepDescriptor::Kind::kRun;
      for (const ScheduledChunk& c : chunks) {
        chunk_ids.push_back(c.seq->request.id);
        step.chunks.push_back(StepChunk{
            c.seq->seq_id, c.begin,
            std::vector<int32_t>(c.seq->tokens.begin() + c.begin,
                                 c.seq->tokens.begin() + c.begin + c.len)});
      }
    }
  }

  // The forward runs without the lock, so Submit/Abort stay responsive. An Abort meanwhile
  // destroys its sequence: after the forward every chunk's sequence is looked up again by id.
  absl::Status status = Broadcast(step);
  if (step.kind == StepDescriptor::Kind::kShutdown) {
    absl::MutexLock lock(&mu_);
    FailAll(status.ok() ? absl::CancelledError("engine shut down") : status);
    return false;
  }
  absl::StatusOr<std::vector<float>> logits =
      status.ok() ? runner_->Execute(step) : absl::StatusOr<std::vector<float>>(status);

  absl::MutexLock lock(&mu_);
  if (!logits.ok()) {
    FailAll(logits.status());
    return false;
  }
  const int64_t vocab = config().vocab_size;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    const auto it = sequences_.find(chunk_ids[i]);
    if (it == sequences_.end() || it->second->seq_id != step.chunks[i].seq_id) {
      // Aborted during the forward: its cache rows exist on every rank now; drop them.
      freed_.push_back(step.chunks[i].seq_id);
      continue;
    }
    Sequence* s = it->second.get();
    s->num_computed += c.len;
    if (!c.samples) continue;
    absl::StatusOr<SampleResult> r =
        Sample(absl::MakeConstSpan(logits->data() + i * vocab, vocab), *s->sampling);
    EngineOutput out;
    if (!r.ok()) {
      out.finish = EngineFinish::kError;
      out.error = r.status();
      Finish(s, std::move(out));
      continue;
    }
    s->tokens.push_back(r->token);
    out.tokens.push_back(*r);
    if (r->finish_reason == FinishReason::kStopToken) {
      out.finish = EngineFinish::kStop;
      out.matched_stop_token = r->token;
    } else if (r->finish_reason == FinishReason::kLength ||
               static_cast<int64_t>(s->tokens.size()) >= max_model_len_) {
      out.finish = EngineFinish::kLength;
    }
    if (out.finish != EngineFinish::kNone) {
      Finish(s, std::move(out));
    } else {
      out.prompt_tokens = static_cast<int32_t>(s->num_prompt());
      out.completion_tokens = static_cast<int32_t>(s->tokens.size() - s->num_prompt());
      if (s->request.on_output) s->request.on_output(out);
    }
  }
  return true;
}

absl::Status Follower::Run() {
  while (true) {
    std::string bytes;
    G4_RETURN_IF_ERROR(control_->BroadcastBytes(&bytes, /*root=*/0));
    G4_ASSIGN_OR_RETURN(StepDescriptor step, StepDescriptor::Parse(bytes));
    if (step.kind == StepDescriptor::Kind::kShutdown) return absl::OkStatus();
    G4_RETURN_IF_ERROR(runner_->Execute(step).status());
  }
}

}  // namespace g4
