// Picks the replica a request runs on: the READY replica with the fewest requests the
// coordinator has in flight there (ties: the lowest replica index). A Lease counts the request as
// in flight on its replica until it is destroyed.
//
// Thread-safe.
#ifndef G4SERVE_COORDINATOR_ROUTER_ROUTER_H_
#define G4SERVE_COORDINATOR_ROUTER_ROUTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace g4 {

// One replica as the router sees it.
struct ReplicaEndpoint {
  int index = 0;
  bool ready = false;                     // READY: may take requests
  bool draining = false;                  // DRAINING: finishing its requests, takes no new ones
  absl::Time since = absl::InfinitePast();  // when it entered its current state
  std::string leader_address;             // rank 0's host:port
  std::shared_ptr<grpc::Channel> leader;  // channel to rank 0 (null in unit tests is fine)
};

// Where replicas come from (the FleetManager; a fixed list in tests).
class ReplicaSource {
 public:
  virtual ~ReplicaSource() = default;
  // Every replica formed so far, READY or not, by index.
  virtual std::vector<ReplicaEndpoint> Endpoints() const = 0;
};

class Router {
 public:
  // `source` must outlive the router.
  explicit Router(const ReplicaSource* source) : source_(source) {}

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    const ReplicaEndpoint& replica() const { return replica_; }

   private:
    friend class Router;
    Lease(Router* router, ReplicaEndpoint replica) : router_(router), replica_(std::move(replica)) {}
    void Release();

    Router* router_ = nullptr;
    ReplicaEndpoint replica_;
  };

  // The least-loaded READY replica not in `exclude`; UNAVAILABLE "no replica available (N of M
  // down)" when there is none (N: replicas not READY, M: replicas formed).
  absl::StatusOr<Lease> Acquire(const absl::flat_hash_set<int>& exclude = {});

  // Requests in flight on `replica` (leases not yet destroyed).
  int InFlight(int replica) const;

 private:
  void Release(int replica);

  const ReplicaSource* source_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int, int> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_ROUTER_ROUTER_H_
