#include "coordinator/fleet/fleet_manager.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <iostream>
#include <iterator>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/blocking_counter.h"
#include "common/random_id.h"
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
    case ReplicaState::kDraining:
      return "DRAINING";
  }
  return "UNKNOWN";
}

struct FleetManager::Probe {
  int replica = 0;
  int rank = 0;
  std::shared_ptr<Worker> worker;
  grpc::ClientContext ctx;
  wpb::HealthRequest request;
  wpb::HealthResponse response;
  grpc::Status status;
};

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
  std::vector<OwnedThread> threads;
  {
    absl::MutexLock lock(&mu_);
    if (!shutdown_) {
      shutdown_ = true;
      for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
    }
    threads.swap(threads_);
  }
  if (health_thread_.joinable()) health_thread_.join();
  for (OwnedThread& t : threads) t.thread.join();
}

void FleetManager::SpawnLocked(std::function<void()> body) {
  // Reap the threads that finished (a long-running coordinator re-forms many times).
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back(OwnedThread{std::thread([body = std::move(body), done] {
                                   body();
                                   done->store(true);
                                 }),
                                 done});
}

void FleetManager::SetStateListener(std::function<void()> listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void FleetManager::SetRecoveryListener(std::function<void(int, bool)> listener) {
  absl::MutexLock lock(&mu_);
  recovery_listener_ = std::move(listener);
}

void FleetManager::Notify(const Notes& notes) {
  std::function<void()> listener;
  std::function<void(int, bool)> recovery;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
    recovery = recovery_listener_;
  }
  if (recovery) {
    for (const auto& [replica, reformed] : notes.recoveries) recovery(replica, reformed);
  }
  if (notes.state_changed && listener) listener();
}

int FleetManager::ReadyCountLocked() const {
  int ready = 0;
  for (const auto& r : replicas_) ready += r->status.state == ReplicaState::kReady ? 1 : 0;
  return ready;
}

void FleetManager::TransitionLocked(Replica& r, ReplicaState state, const std::string& reason,
                                    const std::string& error, Notes* notes) {
  ReplicaStatus& s = r.status;
  if (s.state == state && s.reason == reason) {
    s.error = error;  // the details may change (e.g. which rank is still missing)
    return;
  }
  // A replica that served for stable_after starts its failure count over when it leaves READY.
  if (s.state == ReplicaState::kReady && r.ready_since != absl::InfinitePast() &&
      absl::Now() - r.ready_since >= options_.stable_after) {
    s.failures = 0;
  }
  if (s.state != state) s.since = absl::Now();
  s.state = state;
  s.reason = reason;
  s.error = error;
  if (state == ReplicaState::kReady) s.retry_at.reset();
  std::string line = absl::StrCat("replica ", s.index, ": ", ReplicaStateName(state));
  if (!reason.empty()) absl::StrAppend(&line, " (", reason, ")");
  if (!error.empty()) absl::StrAppend(&line, ": ", error);
  absl::StrAppend(&line, " (", ReadyCountLocked(), " of ", replicas_.size(), " ready)");
  Log(line);
  notes->state_changed = true;
}

absl::Duration FleetManager::BackoffFor(int failures) const {
  if (failures <= 1) return absl::ZeroDuration();
  absl::Duration d = options_.reform_backoff;
  for (int i = 2; i < failures && d < options_.reform_backoff_max; ++i) d *= 2;
  return std::min(d, options_.reform_backoff_max);
}

void FleetManager::NoteFailureLocked(Replica& r) {
  if (r.status.state == ReplicaState::kReady && r.ready_since != absl::InfinitePast() &&
      absl::Now() - r.ready_since >= options_.stable_after) {
    r.status.failures = 0;  // it served long enough: this failure starts a new count
  }
  ++r.status.failures;
  r.status.retry_at = absl::Now() + BackoffFor(r.status.failures);
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
  worker->channel =
      options_.internal_tls != nullptr
          ? options_.internal_tls->Dial(request.address(), args)
          : grpc::CreateCustomChannel(request.address(), grpc::InsecureChannelCredentials(), args);
  worker->stub = wpb::Worker::NewStub(worker->channel);
  std::string id;
  Notes notes;
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
    std::string where;
    if (!worker->info.replica_group.empty()) {
      where = absl::StrCat(", group ", worker->info.replica_group);
      if (worker->info.replica_rank >= 0) absl::StrAppend(&where, " rank ", worker->info.replica_rank);
    }
    Log(absl::StrCat("worker ", id, " registered: ", request.address(), " (",
                     request.device().kind().empty() ? "?" : request.device().kind(), where,
                     ")"));
    // A new process on the address of a replica's rank: the old one is gone, this one takes its
    // place (the replica is formed again).
    bool placed = false;
    for (auto& r : replicas_) {
      if (placed || r->status.permanent || r->busy) continue;
      for (size_t rank = 0; rank < r->workers.size(); ++rank) {
        if (r->workers[rank]->info.address == request.address()) {
          ReplaceRankLocked(*r, static_cast<int>(rank), worker, &notes);
          placed = true;
          break;
        }
      }
    }
    if (!placed) {
      if (worker->info.replica_group.empty()) {
        free_.push_back(worker);
      } else {
        free_groups_[worker->info.replica_group].push_back(worker);
      }
    }
    if (FillVacanciesLocked()) notes.state_changed = true;
    if (FormReplicasLocked()) notes.state_changed = true;  // a new replica: counts changed
  }
  Notify(notes);
  return id;
}

void FleetManager::ReplaceRankLocked(Replica& r, int rank, std::shared_ptr<Worker> worker,
                                     Notes* notes) {
  const WorkerInfo old = r.workers[rank]->info;
  auto same = [&](const std::shared_ptr<Worker>& w) { return w == worker; };
  free_.erase(std::remove_if(free_.begin(), free_.end(), same), free_.end());
  for (auto it = free_groups_.begin(); it != free_groups_.end();) {
    auto& members = it->second;
    members.erase(std::remove_if(members.begin(), members.end(), same), members.end());
    it = members.empty() ? free_groups_.erase(it) : std::next(it);
  }
  Log(absl::StrCat("replica ", r.status.index, ": rank ", rank, ": ", old.id, " (", old.address,
                   ") replaced by ", worker->info.id, " (", worker->info.address, ")"));
  r.workers[rank] = std::move(worker);
  r.status.workers[rank] = r.workers[rank]->info;
  r.health[rank] = RankHealth::kUnknown;
  if (!r.needs_reform) {
    NoteFailureLocked(r);
    r.needs_reform = true;
  }
  if (r.status.state == ReplicaState::kReady || r.status.state == ReplicaState::kDraining) {
    TransitionLocked(r, ReplicaState::kUnavailable, "rank_restarted",
                     absl::StrCat("rank ", rank, " (", old.id, " ", old.address,
                                  ") was replaced by a new process"),
                     notes);
  }
}

bool FleetManager::FillVacanciesLocked() {
  bool any = false;
  Notes ignored;  // no transitions: only replicas out of service are filled
  for (auto& rp : replicas_) {
    Replica& r = *rp;
    if (r.status.permanent || r.busy || r.status.state == ReplicaState::kReady ||
        r.status.state == ReplicaState::kDraining || r.status.state == ReplicaState::kLoading) {
      continue;
    }
    for (size_t rank = 0; rank < r.workers.size(); ++rank) {
      // A rank that drained (or still drains) out of a replica out of service is leaving, as
      // good as one that does not answer.
      const RankHealth h = r.health[rank] == RankHealth::kDraining ? RankHealth::kUnreachable
                                                                   : r.health[rank];
      if (h != RankHealth::kUnreachable && h != RankHealth::kNotServing) continue;
      const WorkerInfo& old = r.workers[rank]->info;
      std::shared_ptr<Worker> candidate;
      // Definitive: the same address, or the same group and rank (a restarted process).
      for (const auto& w : free_) {
        if (w->info.address == old.address) candidate = w;
      }
      for (const auto& [group, members] : free_groups_) {
        for (const auto& w : members) {
          if (candidate == nullptr &&
              (w->info.address == old.address ||
               (!old.replica_group.empty() && old.replica_rank >= 0 &&
                w->info.replica_group == old.replica_group &&
                w->info.replica_rank == old.replica_rank))) {
            candidate = w;
          }
        }
      }
      // Any free ungrouped worker for an ungrouped replica's rank that does not answer.
      if (candidate == nullptr && h == RankHealth::kUnreachable && old.replica_group.empty() &&
          !free_.empty()) {
        candidate = free_.front();
      }
      if (candidate == nullptr) continue;
      ReplaceRankLocked(r, static_cast<int>(rank), std::move(candidate), &ignored);
      any = true;
    }
  }
  return any;
}

bool FleetManager::HasReplicaSlotLocked() const {
  if (options_.num_replicas <= 0) return true;
  // Replicas out of service keep their slot (they are formed again, their lost ranks replaced);
  // only those FAILED for good free it.
  int live = 0;
  for (const auto& r : replicas_) live += r->status.permanent ? 0 : 1;
  return live < options_.num_replicas;
}

bool FleetManager::FormReplicasLocked() {
  const int world = std::max(1, options_.tensor_parallel_size);
  bool formed = false;
  // Complete groups first (in group-name order), then ungrouped workers. A group that already
  // has a replica (not FAILED for good) forms no other: its free workers replace lost ranks.
  auto has_replica = [this](const std::string& group) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& r : replicas_) {
      if (!r->status.permanent && r->workers[0]->info.replica_group == group) return true;
    }
    return false;
  };
  for (auto it = free_groups_.begin(); it != free_groups_.end() && HasReplicaSlotLocked();) {
    std::vector<std::shared_ptr<Worker>>& members = it->second;
    if (static_cast<int>(members.size()) < world || has_replica(it->first)) {
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
  replica->status.permanent = !error.empty();
  replica->status.since = absl::Now();
  if (!error.empty()) replica->status.reason = "bad_ranks";
  replica->workers = std::move(workers);
  replica->health.assign(replica->workers.size(), RankHealth::kUnknown);
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
    Log(absl::StrCat("replica ", index, ": FAILED: ", error, " (", ReadyCountLocked(), " of ",
                     replicas_.size(), " ready)"));
    return;
  }
  Log(absl::StrCat("replica ", index, ": LOADING on ", absl::StrJoin(ids, ","), " (leader ",
                   replicas_.back()->workers[0]->info.address, group_note, ")"));
  replicas_.back()->busy = true;
  SpawnLocked([this, index] { LoadReplica(index, /*unload_first=*/false); });
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

std::optional<std::vector<std::string>> FleetManager::CallEveryRank(
    const std::vector<std::shared_ptr<Worker>>& workers, absl::Duration deadline,
    const std::function<void(int rank, grpc::ClientContext* ctx,
                             std::function<void(grpc::Status)> done)>& start) {
  const int world = static_cast<int>(workers.size());
  std::vector<grpc::ClientContext> contexts(world);
  std::vector<grpc::Status> results(world);
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return std::nullopt;
    for (grpc::ClientContext& ctx : contexts) calls_.insert(&ctx);
  }
  absl::BlockingCounter done(world);
  for (int rank = 0; rank < world; ++rank) {
    contexts[rank].set_deadline(DeadlineAfter(deadline));
    start(rank, &contexts[rank], [&results, &done, rank](grpc::Status s) {
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
  return errors;
}

std::vector<std::string> FleetManager::UnloadAll(
    const std::vector<std::shared_ptr<Worker>>& workers, const std::string& reason) {
  wpb::UnloadRequest request;
  request.set_reason(reason);
  std::vector<wpb::UnloadResponse> responses(workers.size());
  // A rank stuck in a collective stops within the collective timeout; a follower whose leader is
  // gone is left after 5 s (docs/worker.md).
  std::optional<std::vector<std::string>> errors = CallEveryRank(
      workers, options_.collective_timeout + absl::Seconds(10),
      [&](int rank, grpc::ClientContext* ctx, std::function<void(grpc::Status)> done) {
        workers[rank]->stub->async()->Unload(ctx, &request, &responses[rank], std::move(done));
      });
  if (!errors.has_value()) return {"coordinator is shutting down"};
  return *std::move(errors);
}

void FleetManager::LoadReplica(int index, bool unload_first) {
  std::vector<std::shared_ptr<Worker>> workers;
  std::string prefix;
  {
    absl::MutexLock lock(&mu_);
    Replica& r = *replicas_[index];
    workers = r.workers;
    // A fresh rendezvous namespace per load: the keys of an earlier load are never seen again,
    // and the random part keeps anyone who does not get the LoadRequest from guessing it.
    prefix = RandomId(absl::StrCat("replica", index, "/load", load_generation_++, "-"));
    prefix += "/";
    r.status.store_prefix = prefix;
  }
  // Ends the attempt: FAILED (counted toward the backoff; for good when `permanent`).
  auto fail = [&](const std::string& reason, const std::string& error, bool permanent) {
    Notes notes;
    {
      absl::MutexLock lock(&mu_);
      Replica& r = *replicas_[index];
      r.busy = false;
      r.needs_reform = true;
      r.status.permanent = permanent;
      if (permanent) {
        r.status.retry_at.reset();
      } else {
        NoteFailureLocked(r);
      }
      std::string detail = error;
      if (!permanent && r.status.retry_at.has_value() && *r.status.retry_at > absl::Now()) {
        absl::StrAppend(&detail, " (next attempt in ",
                        absl::FormatDuration(absl::Trunc(*r.status.retry_at - absl::Now(),
                                                         absl::Milliseconds(1))),
                        ")");
      }
      TransitionLocked(r, ReplicaState::kFailed, reason, detail, &notes);
    }
    Notify(notes);
  };
  if (unload_first) {
    std::vector<std::string> errors =
        UnloadAll(workers, absl::StrCat("the coordinator forms replica ", index, " again"));
    if (!errors.empty()) {
      fail("load_failed", absl::StrCat("unload before forming it again failed: ",
                                       absl::StrJoin(errors, "; ")),
           /*permanent=*/false);
      return;
    }
  }
  absl::StatusOr<g4serve::v1::ParallelPlan> plan = PlanFor(workers);
  if (!plan.ok()) {
    fail("plan_failed", Annotate(plan.status(), "plan").ToString(), /*permanent=*/true);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    replicas_[index]->status.max_context = plan->max_context();
  }
  const int world = static_cast<int>(workers.size());
  std::vector<wpb::LoadRequest> requests(world);
  std::vector<wpb::LoadResponse> responses(world);
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
  }
  // Only the keys of loads in progress can be set or read (ErasePrefix below closes it).
  store_->OpenPrefix(prefix);
  std::optional<std::vector<std::string>> errors = CallEveryRank(
      workers, options_.load_timeout,
      [&](int rank, grpc::ClientContext* ctx, std::function<void(grpc::Status)> done) {
        workers[rank]->stub->async()->Load(ctx, &requests[rank], &responses[rank],
                                           std::move(done));
      });
  if (!errors.has_value()) return;  // shutting down
  store_->ErasePrefix(prefix);
  if (!errors->empty()) {
    fail("load_failed", absl::StrCat("load failed: ", absl::StrJoin(*errors, "; ")),
         /*permanent=*/false);
    return;
  }
  Notes notes;
  {
    absl::MutexLock lock(&mu_);
    Replica& r = *replicas_[index];
    r.busy = false;
    r.needs_reform = false;
    r.ready_since = absl::Now();
    r.health.assign(r.workers.size(), RankHealth::kServing);
    if (unload_first) {
      ++r.status.recoveries;
      notes.recoveries.emplace_back(index, /*reformed=*/true);
    }
    TransitionLocked(r, ReplicaState::kReady, "", "", &notes);
  }
  Notify(notes);
}

void FleetManager::ReleaseDrainedReplica(int index) {
  std::vector<std::shared_ptr<Worker>> workers;
  {
    absl::MutexLock lock(&mu_);
    workers = replicas_[index]->workers;
  }
  // Ranks that do not answer are gone already; the draining one exits once unloaded.
  std::vector<std::string> errors =
      UnloadAll(workers, absl::StrCat("replica ", index, " drained"));
  Notes notes;
  {
    absl::MutexLock lock(&mu_);
    Replica& r = *replicas_[index];
    r.busy = false;
    r.needs_reform = true;
    for (RankHealth& h : r.health) {  // the draining ranks are leaving; the others are unloaded
      h = h == RankHealth::kDraining ? RankHealth::kDraining : RankHealth::kUnknown;
    }
    TransitionLocked(r, ReplicaState::kUnavailable, "drained",
                     absl::StrCat("drained and unloaded; waiting for the draining worker's "
                                  "replacement",
                                  errors.empty() ? "" : " (unload: ",
                                  absl::StrJoin(errors, "; "), errors.empty() ? "" : ")"),
                     &notes);
    if (FillVacanciesLocked()) notes.state_changed = true;  // a free worker may be waiting
  }
  Notify(notes);
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

void FleetManager::EvaluateLocked(Replica& r, const std::vector<const Probe*>& probes,
                                  Notes* notes) {
  std::vector<std::string> unreachable, not_serving, draining;
  bool any_failed = false;
  for (const Probe* p : probes) {
    const WorkerInfo& w = p->worker->info;
    const std::string who = absl::StrCat("rank ", p->rank, " (", w.id, " ", w.address, ")");
    RankHealth& h = r.health[p->rank];
    if (!p->status.ok()) {
      h = RankHealth::kUnreachable;
      unreachable.push_back(absl::StrCat(who, ": health check failed: ",
                                         FromGrpcStatus(p->status).ToString()));
    } else if (p->response.draining()) {
      h = RankHealth::kDraining;
      draining.push_back(absl::StrCat(who, " is draining (SIGTERM)"));
    } else if (p->response.state() == wpb::WORKER_STATE_READY &&
               p->response.store_prefix() == r.status.store_prefix) {
      h = RankHealth::kServing;
    } else {
      h = RankHealth::kNotServing;
      any_failed = any_failed || p->response.state() == wpb::WORKER_STATE_FAILED;
      std::string what = wpb::WorkerState_Name(p->response.state());
      if (p->response.state() == wpb::WORKER_STATE_READY) {
        what = absl::StrCat("READY on another load (", p->response.store_prefix(), ")");
      }
      not_serving.push_back(absl::StrCat(who, " reports ", what,
                                         p->response.error().empty() ? "" : ": ",
                                         p->response.error()));
    }
  }
  const int index = r.status.index;
  switch (r.status.state) {
    case ReplicaState::kReady:
      if (!draining.empty()) {
        TransitionLocked(r, ReplicaState::kDraining, "draining", absl::StrJoin(draining, "; "),
                         notes);
      } else if (!unreachable.empty()) {
        TransitionLocked(r, ReplicaState::kUnavailable, "unreachable",
                         absl::StrJoin(unreachable, "; "), notes);
      } else if (!not_serving.empty()) {
        NoteFailureLocked(r);
        r.needs_reform = true;
        TransitionLocked(r, ReplicaState::kUnavailable,
                         any_failed ? "rank_failed" : "rank_restarted",
                         absl::StrJoin(not_serving, "; "), notes);
      }
      return;
    case ReplicaState::kDraining: {
      const Probe* leader = probes.empty() || probes[0]->rank != 0 ? nullptr : probes[0];
      const bool leader_idle = leader != nullptr && leader->status.ok() &&
                               leader->response.running() == 0 &&
                               leader->response.waiting() == 0;
      if (leader_idle || !unreachable.empty() || !not_serving.empty()) {
        r.busy = true;
        SpawnLocked([this, index] { ReleaseDrainedReplica(index); });
      }
      return;
    }
    case ReplicaState::kUnavailable:
    case ReplicaState::kFailed:
      break;
    case ReplicaState::kLoading:
      return;
  }
  if (!not_serving.empty() && !r.needs_reform) {
    NoteFailureLocked(r);
    r.needs_reform = true;
  }
  if (!unreachable.empty() || !draining.empty()) {
    // Wait for the ranks to answer (a stall, a cut link) or to be replaced.
    std::vector<std::string> waiting = unreachable;
    waiting.insert(waiting.end(), draining.begin(), draining.end());
    r.status.error = absl::StrCat(absl::StrJoin(waiting, "; "),
                                  "; waiting for it to answer or for a worker to take its place");
    return;
  }
  if (!r.needs_reform && r.status.state == ReplicaState::kUnavailable) {
    // Every rank serves the replica's load again: its communicators are intact.
    r.ready_since = absl::Now();
    ++r.status.recoveries;
    notes->recoveries.emplace_back(index, /*reformed=*/false);
    Log(absl::StrCat("replica ", index, ": every rank answers READY on its load again (",
                     r.status.store_prefix, "): resuming"));
    TransitionLocked(r, ReplicaState::kReady, "", "", notes);
    return;
  }
  if (r.status.retry_at.has_value() && absl::Now() < *r.status.retry_at) return;  // backing off
  const std::string why =
      not_serving.empty() ? r.status.error : absl::StrJoin(not_serving, "; ");
  r.busy = true;
  TransitionLocked(r, ReplicaState::kLoading, "reforming",
                   absl::StrCat("forming it again (attempt ", r.status.failures + 1,
                                "): ", why),
                   notes);
  SpawnLocked([this, index] { LoadReplica(index, /*unload_first=*/true); });
}

void FleetManager::CheckHealthOnce() {
  std::vector<std::unique_ptr<Probe>> probes;
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    for (const auto& r : replicas_) {
      if (r->busy || r->status.permanent) continue;
      for (size_t rank = 0; rank < r->workers.size(); ++rank) {
        auto p = std::make_unique<Probe>();
        p->replica = r->status.index;
        p->rank = static_cast<int>(rank);
        p->worker = r->workers[rank];
        p->ctx.set_deadline(DeadlineAfter(options_.health_timeout));
        calls_.insert(&p->ctx);
        probes.push_back(std::move(p));
      }
    }
  }
  if (!probes.empty()) {
    absl::BlockingCounter done(static_cast<int>(probes.size()));
    for (auto& p : probes) {
      Probe* raw = p.get();
      raw->worker->stub->async()->Health(&raw->ctx, &raw->request, &raw->response,
                                         [raw, &done](grpc::Status s) {
                                           raw->status = std::move(s);
                                           done.DecrementCount();
                                         });
    }
    done.Wait();
  }
  Notes notes;
  std::vector<WorkerHealth> healthy;
  {
    absl::MutexLock lock(&mu_);
    for (auto& p : probes) calls_.erase(&p->ctx);
    if (shutdown_) return;
    std::map<int, std::vector<const Probe*>> by_replica;
    for (const auto& p : probes) by_replica[p->replica].push_back(p.get());
    for (auto& [index, answers] : by_replica) {
      Replica& r = *replicas_[index];
      // Skip a replica that changed during the round (a rank was replaced, a thread took it).
      bool same = !r.busy && answers.size() == r.workers.size();
      for (const Probe* p : answers) same = same && r.workers[p->rank] == p->worker;
      if (!same) continue;
      EvaluateLocked(r, answers, &notes);
      if (r.status.state == ReplicaState::kReady && options_.health_observer) {
        for (const Probe* p : answers) {
          WorkerHealth h;
          h.replica = index;
          h.rank = p->rank;
          h.worker_id = p->worker->info.id;
          h.response = p->response;
          healthy.push_back(std::move(h));
        }
      }
    }
    if (FillVacanciesLocked()) notes.state_changed = true;
    if (FormReplicasLocked()) notes.state_changed = true;
  }
  if (options_.health_observer) options_.health_observer(healthy);
  Notify(notes);
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
  return ReadyCountLocked();
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
    e.draining = r->status.state == ReplicaState::kDraining;
    e.since = r->status.since;
    e.leader_address = r->workers[0]->info.address;
    e.leader = r->workers[0]->channel;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace g4
