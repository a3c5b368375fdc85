#include "coordinator/router/router.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace g4 {

Router::Lease::Lease(Lease&& other) noexcept
    : router_(std::exchange(other.router_, nullptr)), replica_(std::move(other.replica_)) {}

Router::Lease& Router::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    router_ = std::exchange(other.router_, nullptr);
    replica_ = std::move(other.replica_);
  }
  return *this;
}

Router::Lease::~Lease() { Release(); }

void Router::Lease::Release() {
  if (router_ != nullptr) router_->Release(replica_.index);
  router_ = nullptr;
}

absl::StatusOr<Router::Lease> Router::Acquire(const absl::flat_hash_set<int>& exclude) {
  std::vector<ReplicaEndpoint> replicas = source_->Endpoints();
  int down = 0;
  for (const ReplicaEndpoint& r : replicas) down += r.ready ? 0 : 1;
  absl::MutexLock lock(&mu_);
  const ReplicaEndpoint* best = nullptr;
  int best_load = 0;
  for (const ReplicaEndpoint& r : replicas) {
    if (!r.ready || exclude.contains(r.index)) continue;
    auto it = in_flight_.find(r.index);
    const int load = it == in_flight_.end() ? 0 : it->second;
    if (best == nullptr || load < best_load || (load == best_load && r.index < best->index)) {
      best = &r;
      best_load = load;
    }
  }
  if (best == nullptr) {
    return absl::UnavailableError(absl::StrCat("no replica available (", down, " of ",
                                               replicas.size(), " down)"));
  }
  ++in_flight_[best->index];
  return Lease(this, *best);
}

int Router::InFlight(int replica) const {
  absl::MutexLock lock(&mu_);
  auto it = in_flight_.find(replica);
  return it == in_flight_.end() ? 0 : it->second;
}

void Router::Release(int replica) {
  absl::MutexLock lock(&mu_);
  if (--in_flight_[replica] <= 0) in_flight_.erase(replica);
}

}  // namespace g4
