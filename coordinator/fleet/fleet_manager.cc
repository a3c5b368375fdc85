#include "coordinator/fleet/fleet_manager.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/status_macros.h"
#include "proto/grpc_status.h"
#include "coordinator/planner/planner.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace g4 {
namespace {

namespace wpb = ::g4serve::worker::v1;

int64_t PhysicalMemoryBytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page_size <= 0) return int64_t{16} << 30;
  return static_cast<int64_t>(pages) * page_size;
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

}  // namespace

absl::string_view ReplicaStateName(ReplicaState state) {
  switch (state) {
    case ReplicaState::kLoading:
      return "LOADING";
    case ReplicaState::kReady:
      return "READY";
    case ReplicaState::kFailed:
      return "FAILED";
    case ReplicaState::kUnavailable:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

FleetManager::FleetManager(FleetOptions options, KeyValueStoreServer* store)
    : options_(std::move(options)), store_(store) {}

FleetManager::~FleetManager() { Shutdown(); }

void FleetManager::Log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::cerr << "g4-coordinator: " << line << std::endl;
  }
}

void FleetManager::Start() {
  absl::MutexLock lock(&mu_);
  if (started_ || shutdown_) return;
  started_ = true;
  health_thread_ = std::thread([this] { HealthLoop(); });
}

void FleetManager::Shutdown() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
      for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
    }
    threads.swap(load_threads_);
  }
  if (health_thread_.joinable()) health_thread_.join();
  for (std::thread& t : threads) t.join();
}

void FleetManager::SetStateListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

absl::Status FleetManager::Heartbeat(absl::string_view worker_id,
                                     absl::string_view address) const {
  auto matches = [&](const std::shared_ptr<Worker>& w) {
    return w->info.id == worker_id && w->info.address == address;
  };
  {
    absl::MutexLock lock(&mu_);
    if (std::any_of(free_.begin(), free_.end(), matches)) return absl::OkStatus();
    for (const auto& [group, members] : free_groups_) {
      if (std::any_of(members.begin(), members.end(), matches)) return absl::OkStatus();
    }
    for (const auto& replica : replicas_) {
      if (std::any_of(replica->workers.begin(), replica->workers.end(), matches)) {
        return absl::OkStatus();
      }
    }
  }
  return absl::NotFoundError(
      absl::StrCat("no worker ", worker_id, " at ", address, " is registered"));
}

absl::StatusOr<std::string> FleetManager::Register(const wpb::RegisterRequest& request) {
  if (request.address().empty()) return absl::InvalidArgumentError("address: required");
  if (request.has_replica_rank() && request.replica_group().empty()) {
    return absl::InvalidArgumentError("replica_rank: needs a replica_group");
  }
  auto worker = std::make_shared<Worker>();
  worker->info.address = request.address();
  worker->info.device = request.device();
  worker->info.replica_group = request.replica_group();
  worker->info.replica_rank = request.has_replica_rank() ? request.replica_rank() : -1;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  worker->channel = grpc::CreateCustomChannel(request.address(),
                                              grpc::InsecureChannelCredentials(), args);
  worker->stub = wpb::Worker::NewStub(worker->channel);
  std::string id;
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
    id = absl::StrCat("w", next_worker_id_++);
    worker->info.id = id;
    // A worker that restarted on the same address replaces its stale free entry (grouped or not).
    auto same_address = [&](const std::shared_ptr<Worker>& w) {
      return w->info.address == request.address();
    };
    free_.erase(std::remove_if(free_.begin(), free_.end(), same_address), free_.end());
    for (auto it = free_groups_.begin(); it != free_groups_.end();) {
      auto& members = it->second;
      members.erase(std::remove_if(members.begin(), members.end(), same_address), members.end());
      it = members.empty() ? free_groups_.erase(it) : std::next(it);
    }
    if (worker->info.replica_group.empty()) {
      free_.push_back(worker);
    } else {
      free_groups_[worker->info.replica_group].push_back(worker);
    }
    std::string where;
    if (!worker->info.replica_group.empty()) {
      where = absl::StrCat(", group ", worker->info.replica_group);
      if (worker->info.replica_rank >= 0) absl::StrAppend(&where, " rank ", worker->info.replica_rank);
    }
    Log(absl::StrCat("worker ", id, " registered: ", request.address(), " (",
                     request.device().kind().empty() ? "?" : request.device().kind(), where,
                     ")"));
    if (FormReplicasLocked()) listener = listener_;  // a new replica: counts changed
  }
  if (listener) listener();
  return id;
}

bool FleetManager::HasReplicaSlotLocked() const {
  if (options_.num_replicas <= 0) return true;
  // FAILED and UNAVAILABLE replicas are never reloaded: they free their slot, so a restarted
  // group (or fresh workers) can form a replacement.
  int live = 0;
  for (const auto& r : replicas_) {
    live += r->status.state == ReplicaState::kLoading || r->status.state == ReplicaState::kReady;
  }
  return live < options_.num_replicas;
}

bool FleetManager::FormReplicasLocked() {
  const int world = std::max(1, options_.tensor_parallel_size);
  bool formed = false;
  // Complete groups first (in group-name order), then ungrouped workers.
  for (auto it = free_groups_.begin(); it != free_groups_.end() && HasReplicaSlotLocked();) {
    std::vector<std::shared_ptr<Worker>>& members = it->second;
    if (static_cast<int>(members.size()) < world) {
      ++it;
      continue;
    }
    std::vector<std::shared_ptr<Worker>> workers(members.begin(), members.begin() + world);
    members.erase(members.begin(), members.begin() + world);
    const std::string group = it->first;
    it = members.empty() ? free_groups_.erase(it) : std::next(it);

    // Rank order: by replica_rank when every worker carries one, else registration order.
    std::string error;
    int with_rank = 0;
    for (const auto& w : workers) with_rank += w->info.replica_rank >= 0 ? 1 : 0;
    auto describe = [&workers] {
      std::vector<std::string> parts;
      for (const auto& w : workers) {
        parts.push_back(absl::StrCat(w->info.id, " (", w->info.address, ") rank ",
                                     w->info.replica_rank >= 0
                                         ? absl::StrCat(w->info.replica_rank)
                                         : std::string("unset")));
      }
      return absl::StrJoin(parts, ", ");
    };
    if (with_rank == world) {
      std::vector<std::shared_ptr<Worker>> by_rank(world);
      for (const auto& w : workers) {
        const int rank = w->info.replica_rank;
        if (rank >= world) {
          error = absl::StrCat("replica group '", group, "': replica_rank ", rank,
                               " is out of range [0, ", world, ") (tensor_parallel_size ", world,
                               "); workers: ", describe());
          break;
        }
        if (by_rank[rank] != nullptr) {
          error = absl::StrCat("replica group '", group, "': duplicate replica_rank ", rank,
                               " (", by_rank[rank]->info.id, " and ", w->info.id,
                               "); workers: ", describe());
          break;
        }
        by_rank[rank] = w;
      }
      if (error.empty()) workers = std::move(by_rank);
    } else if (with_rank > 0) {
      error = absl::StrCat("replica group '", group, "': replica_rank is set on ", with_rank,
                           " of ", world, " workers (set it on all or none); workers: ",
                           describe());
    }
    AddReplicaLocked(std::move(workers), error);
    formed = true;
  }
  while (static_cast<int>(free_.size()) >= world && HasReplicaSlotLocked()) {
    std::vector<std::shared_ptr<Worker>> workers(free_.begin(), free_.begin() + world);
    free_.erase(free_.begin(), free_.begin() + world);
    AddReplicaLocked(std::move(workers), "");
    formed = true;
  }
  return formed;
}

void FleetManager::AddReplicaLocked(std::vector<std::shared_ptr<Worker>> workers,
                                    const std::string& error) {
  auto replica = std::make_unique<Replica>();
  replica->status.index = static_cast<int>(replicas_.size());
  replica->status.state = error.empty() ? ReplicaState::kLoading : ReplicaState::kFailed;
  replica->status.error = error;
  replica->status.store_prefix =
      absl::StrCat("replica", replica->status.index, "/load", load_generation_++, "/");
  replica->workers = std::move(workers);
  std::vector<std::string> ids;
  for (const auto& w : replica->workers) {
    replica->status.workers.push_back(w->info);
    ids.push_back(w->info.id);
  }
  const int index = replica->status.index;
  const std::string group = replica->workers[0]->info.replica_group;
  const std::string group_note = group.empty() ? "" : absl::StrCat(", group ", group);
  replicas_.push_back(std::move(replica));
  if (!error.empty()) {
    int ready = 0;
    for (const auto& r : replicas_) ready += r->status.state == ReplicaState::kReady ? 1 : 0;
    Log(absl::StrCat("replica ", index, ": FAILED: ", error, " (", ready, " of ",
                     replicas_.size(), " ready)"));
    return;
  }
  Log(absl::StrCat("replica ", index, ": LOADING on ", absl::StrJoin(ids, ","), " (leader ",
                   replicas_.back()->workers[0]->info.address, group_note, ")"));
  load_threads_.emplace_back([this, index] { LoadReplica(index); });
}

PlanRequest FleetPlanRequest(const FleetOptions& options) {
  PlanRequest request;
  request.model_name = options.model_name;
  request.num_devices = options.tensor_parallel_size;
  request.max_context = options.engine.max_model_len();
  request.tensor_parallel_size = options.tensor_parallel_size;
  request.expert_parallel_size =
      options.model_config.enable_moe_block || options.expert_parallel_size > 1
          ? options.expert_parallel_size
          : 0;
  if (options.engine.max_num_batched_tokens() > 0) {
    request.max_num_batched_tokens = options.engine.max_num_batched_tokens();
  }
  if (options.engine.max_num_seqs() > 0) request.max_num_seqs = options.engine.max_num_seqs();
  return request;
}

absl::StatusOr<g4serve::v1::ParallelPlan> FleetManager::PlanFor(
    const std::vector<std::shared_ptr<Worker>>& workers) const {
  PlanRequest request = FleetPlanRequest(options_);
  bool all_cuda = true;
  int64_t memory = 0;
  for (const auto& w : workers) {
    if (w->info.device.kind() != "cuda") all_cuda = false;
    int64_t m = w->info.device.memory_bytes();
    if (m <= 0) m = options_.default_memory_bytes > 0 ? options_.default_memory_bytes
                                                       : PhysicalMemoryBytes();
    memory = memory == 0 ? m : std::min(memory, m);
  }
  request.device_kind = all_cuda ? DeviceKind::kGpu : DeviceKind::kCpu;
  request.num_devices = static_cast<int>(workers.size());
  request.device_memory_bytes = memory;
  return MakePlan(options_.model_config, request);
}

void FleetManager::LoadReplica(int index) {
  std::vector<std::shared_ptr<Worker>> workers;
  std::string prefix;
  {
    absl::MutexLock lock(&mu_);
    workers = replicas_[index]->workers;
    prefix = replicas_[index]->status.store_prefix;
  }
  absl::StatusOr<g4serve::v1::ParallelPlan> plan = PlanFor(workers);
  if (!plan.ok()) {
    SetState(index, ReplicaState::kFailed, Annotate(plan.status(), "plan").ToString());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    replicas_[index]->status.max_context = plan->max_context();
  }
  const int world = static_cast<int>(workers.size());
  std::vector<grpc::ClientContext> contexts(world);
  std::vector<wpb::LoadRequest> requests(world);
  std::vector<wpb::LoadResponse> responses(world);
  std::vector<grpc::Status> results(world);
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    for (grpc::ClientContext& ctx : contexts) calls_.insert(&ctx);
  }
  absl::BlockingCounter done(world);
  for (int rank = 0; rank < world; ++rank) {
    wpb::LoadRequest& r = requests[rank];
    r.set_model_dir(options_.model_dir);
    r.set_replica(index);
    r.set_rank(rank);
    r.set_world_size(world);
    r.set_expert_parallel_size(std::max(1, plan->expert_parallel_size()));
    r.set_store_prefix(prefix);
    r.set_collective_timeout_ms(absl::ToInt64Milliseconds(options_.collective_timeout));
    *r.mutable_plan() = *plan;
    *r.mutable_engine() = options_.engine;
    contexts[rank].set_deadline(DeadlineAfter(options_.load_timeout));
    workers[rank]->stub->async()->Load(&contexts[rank], &requests[rank], &responses[rank],
                                       [&results, &done, rank](grpc::Status s) {
                                         results[rank] = std::move(s);
                                         done.DecrementCount();
                                       });
  }
  done.Wait();
  {
    absl::MutexLock lock(&mu_);
    for (grpc::ClientContext& ctx : contexts) calls_.erase(&ctx);
  }
  std::vector<std::string> errors;
  for (int rank = 0; rank < world; ++rank) {
    if (!results[rank].ok()) {
      errors.push_back(absl::StrCat("rank ", rank, " (", workers[rank]->info.id, " ",
                                    workers[rank]->info.address, "): ",
                                    FromGrpcStatus(results[rank]).ToString()));
    }
  }
  store_->ErasePrefix(prefix);
  if (errors.empty()) {
    SetState(index, ReplicaState::kReady, "", ReplicaState::kLoading);
  } else {
    SetState(index, ReplicaState::kFailed, absl::StrCat("load failed: ", absl::StrJoin(errors, "; ")));
  }
}

void FleetManager::SetState(int index, ReplicaState state, const std::string& error,
                            std::optional<ReplicaState> only_from) {
  std::function<void()> listener;
  {
    absl::MutexLock lock(&mu_);
    ReplicaStatus& s = replicas_[index]->status;
    if (s.state == state) return;
    if (only_from.has_value() && s.state != *only_from) return;
    if (s.state == ReplicaState::kFailed || s.state == ReplicaState::kUnavailable) return;
    s.state = state;
    s.error = error;
    std::string line = absl::StrCat("replica ", index, ": ", ReplicaStateName(state));
    if (!error.empty()) absl::StrAppend(&line, ": ", error);
    int ready = 0;
    for (const auto& r : replicas_) ready += r->status.state == ReplicaState::kReady ? 1 : 0;
    absl::StrAppend(&line, " (", ready, " of ", replicas_.size(), " ready)");
    Log(line);
    // A dead replica frees a --num-replicas slot: free workers may form a replacement.
    if (state == ReplicaState::kFailed || state == ReplicaState::kUnavailable) {
      if (!shutdown_) FormReplicasLocked();
    }
    listener = listener_;
  }
  if (listener) listener();
}

void FleetManager::HealthLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), options_.health_interval)) return;
    }
    CheckHealthOnce();
  }
}

void FleetManager::CheckHealthOnce() {
  struct Check {
    int replica;
    int rank;
    std::shared_ptr<Worker> worker;
    grpc::ClientContext ctx;
    wpb::HealthRequest request;
    wpb::HealthResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Check>> checks;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    for (const auto& r : replicas_) {
      if (r->status.state != ReplicaState::kReady) continue;
      for (size_t rank = 0; rank < r->workers.size(); ++rank) {
        const auto& w = r->workers[rank];
        auto c = std::make_unique<Check>();
        c->replica = r->status.index;
        c->rank = static_cast<int>(rank);
        c->worker = w;
        c->ctx.set_deadline(DeadlineAfter(options_.health_timeout));
        calls_.insert(&c->ctx);
        checks.push_back(std::move(c));
      }
    }
  }
  if (checks.empty()) {
    if (options_.health_observer) options_.health_observer({});
    return;
  }
  absl::BlockingCounter done(static_cast<int>(checks.size()));
  for (auto& c : checks) {
    Check* raw = c.get();
    raw->worker->stub->async()->Health(&raw->ctx, &raw->request, &raw->response,
                                       [raw, &done](grpc::Status s) {
                                         raw->status = std::move(s);
                                         done.DecrementCount();
                                       });
  }
  done.Wait();
  {
    absl::MutexLock lock(&mu_);
    for (auto& c : checks) calls_.erase(&c->ctx);
  }
  absl::flat_hash_set<int> unhealthy;
  for (auto& c : checks) {
    const WorkerInfo& w = c->worker->info;
    std::string error;
    if (!c->status.ok()) {
      error = absl::StrCat("worker ", w.id, " (", w.address, ") health check failed: ",
                           FromGrpcStatus(c->status).ToString());
    } else if (c->response.state() != wpb::WORKER_STATE_READY) {
      error = absl::StrCat("worker ", w.id, " (", w.address, ") reports ",
                           wpb::WorkerState_Name(c->response.state()),
                           c->response.error().empty() ? "" : ": ", c->response.error());
    }
    if (!error.empty()) {
      SetState(c->replica, ReplicaState::kUnavailable, error);
      unhealthy.insert(c->replica);
    }
  }
  if (!options_.health_observer) return;
  std::vector<WorkerHealth> healthy;
  for (auto& c : checks) {
    if (unhealthy.contains(c->replica)) continue;
    WorkerHealth h;
    h.replica = c->replica;
    h.rank = c->rank;
    h.worker_id = c->worker->info.id;
    h.response = std::move(c->response);
    healthy.push_back(std::move(h));
  }
  options_.health_observer(healthy);
}

std::vector<ReplicaStatus> FleetManager::Replicas() const {
  absl::MutexLock lock(&mu_);
  std::vector<ReplicaStatus> out;
  for (const auto& r : replicas_) out.push_back(r->status);
  return out;
}

int FleetManager::FreeWorkers() const {
  absl::MutexLock lock(&mu_);
  int n = static_cast<int>(free_.size());
  for (const auto& [group, members] : free_groups_) n += static_cast<int>(members.size());
  return n;
}

int FleetManager::ReadyReplicas() const {
  absl::MutexLock lock(&mu_);
  int ready = 0;
  for (const auto& r : replicas_) ready += r->status.state == ReplicaState::kReady ? 1 : 0;
  return ready;
}

int FleetManager::TotalReplicas() const {
  absl::MutexLock lock(&mu_);
  return std::max(static_cast<int>(replicas_.size()), options_.num_replicas);
}

int64_t FleetManager::MaxContext() const {
  {
    absl::MutexLock lock(&mu_);
    for (const auto& r : replicas_) {
      if (r->status.max_context > 0) return r->status.max_context;
    }
  }
  if (options_.engine.max_model_len() > 0) return options_.engine.max_model_len();
  return options_.model_config.max_position_embeddings;
}

bool FleetManager::WaitForState(int index, ReplicaState state, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, index, state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return index < static_cast<int>(replicas_.size()) && replicas_[index]->status.state == state;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

std::vector<ReplicaEndpoint> FleetManager::Endpoints() const {
  absl::MutexLock lock(&mu_);
  std::vector<ReplicaEndpoint> out;
  for (const auto& r : replicas_) {
    ReplicaEndpoint e;
    e.index = r->status.index;
    e.ready = r->status.state == ReplicaState::kReady;
    e.leader_address = r->workers[0]->info.address;
    e.leader = r->workers[0]->channel;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace g4
