#include "coordinator/fleet/fleet_manager.h"

#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "coordinator/fleet/fleet_service.h"
#include "coordinator/fleet/key_value_store_server.h"
#include "coordinator/router/router.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "tests/coordinator/coordinator_test_util.h"
#include "gtest/gtest.h"
#include "tests/coordinator/fake_worker.h"

namespace g4 {
namespace {

using ::g4::testing::TinyConfig;

using ::g4::testing::FakeWorker;
using ::testing::HasSubstr;
namespace wpb = ::g4serve::worker::v1;

constexpr absl::Duration kWait = absl::Seconds(20);

// Polls fleet.Replicas() until replica `index` satisfies `pred`; false after kWait.
bool WaitForReplica(const FleetManager& fleet, int index,
                    const std::function<bool(const ReplicaStatus&)>& pred) {
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    const std::vector<ReplicaStatus> replicas = fleet.Replicas();
    if (index < static_cast<int>(replicas.size()) && pred(replicas[index])) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

int LoadCount(FakeWorker& w) {
  absl::MutexLock l(&w.mu);
  return static_cast<int>(w.loads.size());
}

FleetOptions Options(int tp) {
  FleetOptions o;
  o.model_dir = "/models/dense";
  o.model_name = "dense";
  o.model_config = TinyConfig();
  o.tensor_parallel_size = tp;
  o.health_interval = absl::Milliseconds(50);
  o.health_timeout = absl::Milliseconds(200);
  o.log = [](const std::string&) {};
  return o;
}

TEST(FleetManagerTest, HeartbeatKnowsRegisteredWorkersByIdAndAddress) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  // Called in-process (no connection, no peer): the address check is FleetServiceTest's.
  FleetServiceImpl service(&fleet, &store, /*check_worker_address=*/false);
  FakeWorker w0, w1;
  absl::StatusOr<std::string> id0 = fleet.Register(w0.Registration());
  ASSERT_TRUE(id0.ok()) << id0.status();
  const std::string a0 = w0.Registration().address();
  // Free (not yet in a replica).
  EXPECT_TRUE(fleet.Heartbeat(*id0, a0).ok());
  // Unknown id, or a known id at another address (a new coordinator reusing ids): NOT_FOUND.
  EXPECT_EQ(fleet.Heartbeat("w7", a0).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fleet.Heartbeat(*id0, "127.0.0.1:1").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fleet.Heartbeat("", "").code(), absl::StatusCode::kNotFound);
  // In a replica.
  absl::StatusOr<std::string> id1 = fleet.Register(w1.Registration());
  ASSERT_TRUE(id1.ok()) << id1.status();
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  EXPECT_TRUE(fleet.Heartbeat(*id0, a0).ok());
  EXPECT_TRUE(fleet.Heartbeat(*id1, w1.Registration().address()).ok());
  EXPECT_EQ(fleet.Heartbeat(*id1, a0).code(), absl::StatusCode::kNotFound);

  // Through the Fleet service.
  grpc::ServerContext ctx;
  wpb::HeartbeatRequest request;
  wpb::HeartbeatResponse response;
  request.set_worker_id(*id1);
  request.set_address(w1.Registration().address());
  EXPECT_TRUE(service.Heartbeat(&ctx, &request, &response).ok());
  request.set_worker_id("w9");
  EXPECT_EQ(service.Heartbeat(&ctx, &request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A new manager (a restarted coordinator) knows nobody.
  KeyValueStoreServer store2;
  FleetManager restarted(Options(2), &store2);
  EXPECT_EQ(restarted.Heartbeat(*id0, a0).code(), absl::StatusCode::kNotFound);
}

TEST(FleetManagerTest, FormsReplicaWhenEnoughWorkersRegistered) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  FakeWorker w0, w1;
  absl::StatusOr<std::string> id0 = fleet.Register(w0.Registration());
  ASSERT_TRUE(id0.ok()) << id0.status();
  EXPECT_EQ(*id0, "w0");
  EXPECT_TRUE(fleet.Replicas().empty());
  EXPECT_EQ(fleet.FreeWorkers(), 1);
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  EXPECT_EQ(fleet.ReadyReplicas(), 1);
  EXPECT_EQ(fleet.TotalReplicas(), 1);
  EXPECT_EQ(fleet.MaxContext(), 512);

  absl::MutexLock l0(&w0.mu);
  absl::MutexLock l1(&w1.mu);
  ASSERT_EQ(w0.loads.size(), 1u);
  ASSERT_EQ(w1.loads.size(), 1u);
  const wpb::LoadRequest& a = w0.loads[0];
  const wpb::LoadRequest& b = w1.loads[0];
  EXPECT_EQ(a.rank(), 0);
  EXPECT_EQ(b.rank(), 1);
  EXPECT_EQ(a.world_size(), 2);
  EXPECT_EQ(a.model_dir(), "/models/dense");
  EXPECT_EQ(a.store_prefix(), b.store_prefix());
  EXPECT_FALSE(a.store_prefix().empty());
  EXPECT_EQ(a.plan().world_size(), 2);
  EXPECT_EQ(a.collective_timeout_ms(), 30000);
  const std::vector<ReplicaEndpoint> endpoints = fleet.Endpoints();
  ASSERT_EQ(endpoints.size(), 1u);
  EXPECT_EQ(endpoints[0].leader_address, w0.address());
}

TEST(FleetManagerTest, NumReplicasLimitsFormation) {
  KeyValueStoreServer store;
  FleetOptions o = Options(1);
  o.num_replicas = 1;
  FleetManager fleet(o, &store);
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  EXPECT_EQ(fleet.Replicas().size(), 1u);
  EXPECT_EQ(fleet.FreeWorkers(), 1);
}

TEST(FleetManagerTest, FailedLoadMarksReplicaFailedOthersServe) {
  KeyValueStoreServer store;
  FleetOptions o = Options(1);
  o.reform_backoff = absl::Seconds(30);  // one retry (immediate), then a long wait
  FleetManager fleet(o, &store);
  fleet.Start();
  FakeWorker w0, w1, w2;
  w1.load_fails = true;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w2.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  ASSERT_TRUE(fleet.WaitForState(2, ReplicaState::kReady, kWait));
  ASSERT_TRUE(WaitForReplica(fleet, 1, [](const ReplicaStatus& r) {
    return r.state == ReplicaState::kFailed && r.failures == 2;
  }));
  const ReplicaStatus failed = fleet.Replicas()[1];
  EXPECT_EQ(failed.reason, "load_failed");
  EXPECT_THAT(failed.error, HasSubstr("out of cheese"));
  EXPECT_THAT(failed.error, HasSubstr("w1"));
  EXPECT_THAT(failed.error, HasSubstr("next attempt in"));
  EXPECT_FALSE(failed.permanent);
  ASSERT_TRUE(failed.retry_at.has_value());
  EXPECT_GT(*failed.retry_at, absl::Now() + absl::Seconds(20));
  EXPECT_EQ(LoadCount(w1), 2);  // the first load and one immediate retry
  EXPECT_EQ(fleet.ReadyReplicas(), 2);
  EXPECT_EQ(fleet.TotalReplicas(), 3);

  Router router(&fleet);
  std::vector<Router::Lease> leases;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Router::Lease> l = router.Acquire();
    ASSERT_TRUE(l.ok()) << l.status();
    EXPECT_NE(l->replica().index, 1);
    leases.push_back(*std::move(l));
  }
}

// A replica whose load keeps failing is formed again with a growing, capped backoff, and
// returns to service once the worker can load.
TEST(FleetManagerTest, FailingReplicaBacksOffThenRecovers) {
  KeyValueStoreServer store;
  FleetOptions o = Options(1);
  o.reform_backoff = absl::Milliseconds(100);
  o.reform_backoff_max = absl::Milliseconds(400);
  FleetManager fleet(o, &store);
  int reformed = 0;
  absl::Mutex mu;
  fleet.SetRecoveryListener([&](int replica, bool was_reformed) {
    absl::MutexLock l(&mu);
    EXPECT_EQ(replica, 0);
    reformed += was_reformed ? 1 : 0;
  });
  fleet.Start();
  FakeWorker w0;
  w0.load_fails = true;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) { return r.failures >= 5; }));
  // Attempts 1, 2 (immediate), then after 100, 200, 400, 400 ms: a handful, not one per round.
  const absl::Time start = absl::Now();
  const int loads_before = LoadCount(w0);
  absl::SleepFor(absl::Milliseconds(1200));
  const int loads_during = LoadCount(w0) - loads_before;
  EXPECT_LE(loads_during, 5) << "backoff not applied (health rounds every 50 ms)";
  const ReplicaStatus r = fleet.Replicas()[0];
  ASSERT_TRUE(r.retry_at.has_value());
  EXPECT_LE(*r.retry_at - start, absl::Milliseconds(1200) + absl::Milliseconds(500));
  // It keeps trying (how many attempts fit in the window above depends on the machine's load).
  EXPECT_TRUE(WaitForReplica(fleet, 0, [&](const ReplicaStatus&) {
    return LoadCount(w0) - loads_before >= 2;
  }));
  w0.load_fails = false;
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  const ReplicaStatus ready = fleet.Replicas()[0];
  EXPECT_EQ(ready.reason, "");
  EXPECT_EQ(ready.recoveries, 1);
  EXPECT_GE(w0.unload_calls.load(), 1);  // every attempt after the first unloads first
  absl::MutexLock l(&mu);  // the listener runs right after the state changed
  auto told = [&reformed] { return reformed > 0; };
  mu.AwaitWithTimeout(absl::Condition(&told), kWait);
  EXPECT_EQ(reformed, 1);
}

// A rank that stops answering for a while (a stall: SIGSTOP, a page-fault storm) takes its
// replica out of service; when it answers READY on the same load again, the replica resumes
// without a reload.
TEST(FleetManagerTest, StalledRankResumesWithoutReload) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  std::vector<bool> recoveries;
  absl::Mutex mu;
  fleet.SetRecoveryListener([&](int, bool reformed) {
    absl::MutexLock l(&mu);
    recoveries.push_back(reformed);
  });
  fleet.Start();
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  w1.health_hangs = true;
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kUnavailable, kWait));
  EXPECT_EQ(fleet.Replicas()[0].reason, "unreachable");
  EXPECT_THAT(fleet.Replicas()[0].error, HasSubstr("rank 1"));
  w1.health_hangs = false;
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  const ReplicaStatus r = fleet.Replicas()[0];
  EXPECT_EQ(r.recoveries, 1);
  EXPECT_EQ(LoadCount(w0), 1);
  EXPECT_EQ(LoadCount(w1), 1);
  EXPECT_EQ(w0.unload_calls.load() + w1.unload_calls.load(), 0);
  absl::MutexLock l(&mu);  // the listener runs right after the state changed
  auto told = [&recoveries] { return !recoveries.empty(); };
  mu.AwaitWithTimeout(absl::Condition(&told), kWait);
  EXPECT_EQ(recoveries, std::vector<bool>{false});
}

// A rank whose collective failed (FAILED) cannot resume: the replica is torn down on every rank
// and loaded again with a fresh store prefix.
TEST(FleetManagerTest, FailedRankIsFormedAgainOnEveryRank) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  const std::string first_prefix = fleet.Replicas()[0].store_prefix;
  w1.health_reports_failed = true;  // cleared by the Unload
  ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) {
    return r.state == ReplicaState::kReady && r.recoveries == 1;
  }));
  EXPECT_EQ(LoadCount(w0), 2);
  EXPECT_EQ(LoadCount(w1), 2);
  EXPECT_EQ(w0.unload_calls.load(), 1);
  EXPECT_EQ(w1.unload_calls.load(), 1);
  const std::string second_prefix = fleet.Replicas()[0].store_prefix;
  EXPECT_NE(second_prefix, first_prefix);
  absl::MutexLock l(&w0.mu);
  EXPECT_EQ(w0.loads[1].store_prefix(), second_prefix);
  EXPECT_EQ(w0.loads[1].rank(), 0);
}

// A process that restarts on a rank's address (it registers again) takes that rank's place at
// once; the replica is formed again with it.
TEST(FleetManagerTest, RestartedProcessOnTheSameAddressTakesItsRank) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  const std::string old_id = fleet.Replicas()[0].workers[1].id;
  w1.health_reports_idle = true;  // a fresh process has nothing loaded
  absl::StatusOr<std::string> id = fleet.Register(w1.Registration());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(fleet.FreeWorkers(), 0);
  EXPECT_EQ(fleet.Replicas()[0].workers[1].id, *id);
  EXPECT_EQ(fleet.ReadyReplicas(), 0);  // out of service at once
  EXPECT_EQ(fleet.Heartbeat(old_id, w1.address()).code(), absl::StatusCode::kNotFound);
  // At least once: on a loaded machine a late health answer can form it once more.
  ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) {
    return r.state == ReplicaState::kReady && r.recoveries >= 1;
  }));
  EXPECT_EQ(fleet.Replicas().size(), 1u);
  EXPECT_GE(LoadCount(w1), 2);
}

TEST(FleetManagerTest, PlanFailureMarksReplicaFailed) {
  KeyValueStoreServer store;
  FleetOptions o = Options(3);  // the tiny model's heads do not split 3 ways
  FleetManager fleet(o, &store);
  FakeWorker w0, w1, w2;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w2.Registration()).ok());
  fleet.Start();
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kFailed, kWait));
  EXPECT_THAT(fleet.Replicas()[0].error, HasSubstr("plan"));
  EXPECT_EQ(fleet.Replicas()[0].reason, "plan_failed");
  EXPECT_TRUE(fleet.Replicas()[0].permanent);  // a plan error is for good: never retried
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(fleet.Replicas()[0].state, ReplicaState::kFailed);
  absl::MutexLock l(&w0.mu);
  EXPECT_TRUE(w0.loads.empty());
}

TEST(FleetManagerTest, SilentWorkerMakesReplicaUnavailable) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(1), &store);
  fleet.Start();
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kReady, kWait));
  absl::SleepFor(absl::Milliseconds(200));  // a few healthy rounds
  EXPECT_EQ(fleet.ReadyReplicas(), 2);

  w0.health_hangs = true;
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kUnavailable, kWait));
  EXPECT_THAT(fleet.Replicas()[0].error, HasSubstr("health check failed"));
  Router router(&fleet);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Router::Lease> l = router.Acquire();
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->replica().index, 1);
  }
  w1.unload_fails = true;  // forming it again fails: it stays out of service
  w1.health_reports_failed = true;
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kUnavailable, kWait));
  EXPECT_THAT(fleet.Replicas()[1].error, HasSubstr("gloo: peer lost"));
  EXPECT_EQ(fleet.Replicas()[1].reason, "rank_failed");
  absl::StatusOr<Router::Lease> none = router.Acquire();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(none.status().message(), HasSubstr("2 of 2 down"));
  w0.health_hangs = false;
  fleet.Shutdown();
}

wpb::RegisterRequest Grouped(const FakeWorker& w, const std::string& group, int rank) {
  wpb::RegisterRequest r = w.Registration();
  r.set_replica_group(group);
  if (rank >= 0) r.set_replica_rank(rank);
  return r;
}

// The Load a fake worker received (rank, replica); {-1, -1} when none.
std::pair<int, int> LoadOf(FakeWorker& w) {
  absl::MutexLock l(&w.mu);
  if (w.loads.empty()) return {-1, -1};
  return {w.loads[0].rank(), w.loads[0].replica()};
}

TEST(FleetManagerTest, InterleavedGroupsFormOneReplicaEachInRankOrder) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  FakeWorker a0, a1, b0, b1;
  // Two LeaderWorkerSet groups starting together: their pods register interleaved, followers
  // before leaders.
  ASSERT_TRUE(fleet.Register(Grouped(a1, "0", 1)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(b1, "1", 1)).ok());
  EXPECT_TRUE(fleet.Replicas().empty());
  EXPECT_EQ(fleet.FreeWorkers(), 2);
  ASSERT_TRUE(fleet.Register(Grouped(b0, "1", 0)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(a0, "0", 0)).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kReady, kWait));
  EXPECT_EQ(fleet.FreeWorkers(), 0);

  const std::vector<ReplicaStatus> replicas = fleet.Replicas();
  ASSERT_EQ(replicas.size(), 2u);
  // Replica 0 formed from group "1" (complete first), replica 1 from group "0".
  ASSERT_EQ(replicas[0].workers.size(), 2u);
  ASSERT_EQ(replicas[1].workers.size(), 2u);
  EXPECT_EQ(replicas[0].workers[0].address, b0.address());
  EXPECT_EQ(replicas[0].workers[1].address, b1.address());
  EXPECT_EQ(replicas[1].workers[0].address, a0.address());
  EXPECT_EQ(replicas[1].workers[1].address, a1.address());
  for (const ReplicaStatus& r : replicas) {
    EXPECT_EQ(r.workers[0].replica_group, r.workers[1].replica_group);
    EXPECT_EQ(r.workers[0].replica_rank, 0);
    EXPECT_EQ(r.workers[1].replica_rank, 1);
  }
  EXPECT_EQ(LoadOf(b0), std::make_pair(0, 0));
  EXPECT_EQ(LoadOf(b1), std::make_pair(1, 0));
  EXPECT_EQ(LoadOf(a0), std::make_pair(0, 1));
  EXPECT_EQ(LoadOf(a1), std::make_pair(1, 1));
  const std::vector<ReplicaEndpoint> endpoints = fleet.Endpoints();
  ASSERT_EQ(endpoints.size(), 2u);
  EXPECT_EQ(endpoints[0].leader_address, b0.address());
  EXPECT_EQ(endpoints[1].leader_address, a0.address());
}

TEST(FleetManagerTest, RestartedGroupTakesTheLostRanksPlaces) {
  for (int num_replicas : {1, 0}) {
    KeyValueStoreServer store;
    FleetOptions o = Options(2);
    o.num_replicas = num_replicas;
    FleetManager fleet(o, &store);
    fleet.Start();
    FakeWorker a0, a1, c0, c1;
    ASSERT_TRUE(fleet.Register(Grouped(a0, "g", 0)).ok());
    ASSERT_TRUE(fleet.Register(Grouped(a1, "g", 1)).ok());
    ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
    // The group's pods came back (new addresses, same group and ranks) while the old replica
    // still looks READY: they wait, and form no second replica of the group ...
    ASSERT_TRUE(fleet.Register(Grouped(c1, "g", 1)).ok());
    ASSERT_TRUE(fleet.Register(Grouped(c0, "g", 0)).ok());
    EXPECT_EQ(fleet.Replicas().size(), 1u) << num_replicas;
    EXPECT_EQ(fleet.FreeWorkers(), 2);
    // ... and take the old pods' places once those stop answering: the same replica is formed
    // again on them.
    a0.Stop();
    a1.Stop();
    // At least once: on a loaded machine a late health answer can form it once more.
    ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) {
      return r.state == ReplicaState::kReady && r.recoveries >= 1;
    })) << num_replicas;
    const std::vector<ReplicaStatus> replicas = fleet.Replicas();
    ASSERT_EQ(replicas.size(), 1u);
    EXPECT_EQ(replicas[0].workers[0].address, c0.address());
    EXPECT_EQ(replicas[0].workers[1].address, c1.address());
    EXPECT_EQ(fleet.FreeWorkers(), 0);
    EXPECT_EQ(fleet.ReadyReplicas(), 1);
    EXPECT_EQ(LoadOf(c0), std::make_pair(0, 0));
    EXPECT_EQ(LoadOf(c1), std::make_pair(1, 0));
    fleet.Shutdown();
  }
}

// A rank that drains (SIGTERM) takes its replica out of routing while its requests finish; then
// every rank is unloaded (the draining worker exits), and a new worker takes its place.
TEST(FleetManagerTest, DrainingRankDrainsItsReplicaThenIsReplaced) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(1), &store);
  fleet.Start();
  FakeWorker w0, w1;
  ASSERT_TRUE(fleet.Register(w0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(w1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kReady, kWait));
  w0.running = 1;  // a request still streaming
  w0.draining = true;
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kDraining, kWait));
  EXPECT_EQ(fleet.Replicas()[0].reason, "draining");
  Router router(&fleet);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Router::Lease> l = router.Acquire();
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->replica().index, 1);
  }
  EXPECT_TRUE(fleet.Endpoints()[0].draining);
  absl::SleepFor(absl::Milliseconds(300));  // several rounds: still draining, not unloaded
  EXPECT_EQ(fleet.Replicas()[0].state, ReplicaState::kDraining);
  EXPECT_EQ(w0.unload_calls.load(), 0);
  w0.running = 0;  // its last stream finished
  ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) {
    return r.state == ReplicaState::kUnavailable && r.reason == "drained";
  }));
  EXPECT_EQ(w0.unload_calls.load(), 1);
  w0.Stop();  // the drained worker exits
  FakeWorker w2;  // its replacement (e.g. the pod restarted elsewhere)
  ASSERT_TRUE(fleet.Register(w2.Registration()).ok());
  ASSERT_TRUE(WaitForReplica(fleet, 0, [](const ReplicaStatus& r) {
    return r.state == ReplicaState::kReady && r.recoveries == 1;
  }));
  EXPECT_EQ(fleet.Replicas()[0].workers[0].address, w2.address());
  EXPECT_EQ(fleet.Replicas().size(), 2u);
}

TEST(FleetManagerTest, DuplicateRankFailsTheGroupsReplica) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  fleet.Start();
  int notified = 0;
  absl::Mutex mu;
  fleet.SetStateListener([&] {
    absl::MutexLock l(&mu);
    ++notified;
  });
  FakeWorker a0, a1, b0, b1;
  ASSERT_TRUE(fleet.Register(Grouped(a0, "bad", 0)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(b0, "good", 0)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(a1, "bad", 0)).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kFailed, kWait));
  const ReplicaStatus failed = fleet.Replicas()[0];
  EXPECT_THAT(failed.error, HasSubstr("replica group 'bad'"));
  EXPECT_THAT(failed.error, HasSubstr("duplicate replica_rank 0"));
  EXPECT_THAT(failed.error, HasSubstr("w0"));
  EXPECT_THAT(failed.error, HasSubstr("w2"));
  {
    absl::MutexLock l(&mu);
    EXPECT_GE(notified, 1);
  }
  {
    absl::MutexLock l0(&a0.mu);
    absl::MutexLock l1(&a1.mu);
    EXPECT_TRUE(a0.loads.empty());
    EXPECT_TRUE(a1.loads.empty());
  }
  // The other group is unaffected.
  ASSERT_TRUE(fleet.Register(Grouped(b1, "good", 1)).ok());
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kReady, kWait));
  EXPECT_EQ(fleet.ReadyReplicas(), 1);
  EXPECT_EQ(fleet.TotalReplicas(), 2);
  EXPECT_EQ(fleet.Replicas()[1].workers[0].address, b0.address());
}

TEST(FleetManagerTest, RankOutOfRangeOrPartialFailsTheGroupsReplica) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  FakeWorker a0, a1, b0, b1;
  ASSERT_TRUE(fleet.Register(Grouped(a0, "x", 0)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(a1, "x", 2)).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kFailed, kWait));
  EXPECT_THAT(fleet.Replicas()[0].error, HasSubstr("replica_rank 2 is out of range [0, 2)"));
  ASSERT_TRUE(fleet.Register(Grouped(b0, "y", 0)).ok());
  ASSERT_TRUE(fleet.Register(Grouped(b1, "y", -1)).ok());
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kFailed, kWait));
  EXPECT_THAT(fleet.Replicas()[1].error, HasSubstr("replica_rank is set on 1 of 2 workers"));
  // A rank without a group is rejected at registration.
  wpb::RegisterRequest r = b0.Registration();
  r.set_replica_rank(0);
  EXPECT_EQ(fleet.Register(r).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FleetManagerTest, UngroupedWorkersKeepRegistrationOrderAndNeverMixWithGroups) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(2), &store);
  FakeWorker u0, g0, u1, g1;
  ASSERT_TRUE(fleet.Register(u0.Registration()).ok());
  ASSERT_TRUE(fleet.Register(Grouped(g1, "g", 1)).ok());
  EXPECT_TRUE(fleet.Replicas().empty());  // one ungrouped + one grouped: no replica
  EXPECT_EQ(fleet.FreeWorkers(), 2);
  ASSERT_TRUE(fleet.Register(u1.Registration()).ok());
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));
  std::vector<ReplicaStatus> replicas = fleet.Replicas();
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].workers[0].address, u0.address());
  EXPECT_EQ(replicas[0].workers[1].address, u1.address());
  EXPECT_TRUE(replicas[0].workers[0].replica_group.empty());
  EXPECT_EQ(fleet.FreeWorkers(), 1);
  ASSERT_TRUE(fleet.Register(Grouped(g0, "g", 0)).ok());
  ASSERT_TRUE(fleet.WaitForState(1, ReplicaState::kReady, kWait));
  replicas = fleet.Replicas();
  EXPECT_EQ(replicas[1].workers[0].address, g0.address());
  EXPECT_EQ(replicas[1].workers[1].address, g1.address());
}

// `service` served on a loopback port picked by the OS, and a client of it.
struct LoopbackFleet {
  explicit LoopbackFleet(FleetServiceImpl* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service);
    server = builder.BuildAndStart();
    stub = wpb::Fleet::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                                   grpc::InsecureChannelCredentials()));
  }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<wpb::Fleet::Stub> stub;
};

TEST(FleetServiceTest, RegisterAndStoreOverGrpc) {
  KeyValueStoreServer store;
  FleetManager fleet(Options(1), &store);
  FleetServiceImpl service(&fleet, &store);
  LoopbackFleet served(&service);
  ASSERT_NE(served.port, 0);
  auto& stub = served.stub;
  auto& server = served.server;

  FakeWorker w0;
  {
    grpc::ClientContext ctx;
    wpb::RegisterResponse response;
    ASSERT_TRUE(stub->Register(&ctx, w0.Registration(), &response).ok());
    EXPECT_EQ(response.worker_id(), "w0");
  }
  {
    grpc::ClientContext ctx;
    wpb::RegisterResponse response;
    grpc::Status s = stub->Register(&ctx, wpb::RegisterRequest(), &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("address"));
  }
  ASSERT_TRUE(fleet.WaitForState(0, ReplicaState::kReady, kWait));

  // The loaded replica's keys are gone and its prefix closed: writes there are refused.
  const std::string loaded = fleet.Replicas()[0].store_prefix;
  EXPECT_THAT(loaded, ::testing::MatchesRegex("replica0/load[0-9]+-[0-9a-f]{32}/"));
  {
    grpc::ClientContext ctx;
    wpb::StoreSetRequest r;
    r.set_key(loaded + "rank0");
    r.set_value("x");
    wpb::StoreSetResponse response;
    EXPECT_EQ(stub->StoreSet(&ctx, r, &response).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  // A load in progress (as the coordinator opens it before Load): set and get over gRPC.
  store.OpenPrefix("replica0/");
  std::thread setter([&] {
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext ctx;
    wpb::StoreSetRequest r;
    r.set_key("replica0/nccl_id");
    r.set_value("abc");
    wpb::StoreSetResponse response;
    EXPECT_TRUE(stub->StoreSet(&ctx, r, &response).ok());
  });
  {
    grpc::ClientContext ctx;
    wpb::StoreGetRequest r;
    r.set_key("replica0/nccl_id");
    r.set_timeout_ms(10000);
    wpb::StoreGetResponse response;
    grpc::Status s = stub->StoreGet(&ctx, r, &response);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(response.value(), "abc");
  }
  setter.join();
  {
    grpc::ClientContext ctx;
    wpb::StoreGetRequest r;
    r.set_key("replica0/never");
    r.set_timeout_ms(50);
    wpb::StoreGetResponse response;
    grpc::Status s = stub->StoreGet(&ctx, r, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_THAT(s.error_message(), HasSubstr("never"));
  }
  store.Shutdown();
  server->Shutdown();
  fleet.Shutdown();
}

// A worker registers, and heartbeats with, only the address its call comes from: over loopback
// the peer is 127.0.0.1, so 127.0.0.2 (someone else's address) is PERMISSION_DENIED; with the
// check off it is taken.
TEST(FleetServiceTest, ARegistrationMustComeFromItsAddress) {
  for (bool check : {true, false}) {
    SCOPED_TRACE(check ? "--worker-address-check=peer" : "--worker-address-check=off");
    KeyValueStoreServer store;
    FleetManager fleet(Options(2), &store);  // TP=2: one worker forms no replica (no Load)
    FleetServiceImpl service(&fleet, &store, check);
    LoopbackFleet served(&service);
    ASSERT_NE(served.port, 0);
    auto& stub = served.stub;
    auto& server = served.server;
    auto register_as = [&](const std::string& address, std::string* id) {
      grpc::ClientContext ctx;
      wpb::RegisterRequest request;
      request.set_address(address);
      wpb::RegisterResponse response;
      grpc::Status s = stub->Register(&ctx, request, &response);
      if (id != nullptr) *id = response.worker_id();
      return s;
    };
    auto heartbeat = [&](const std::string& id, const std::string& address) {
      grpc::ClientContext ctx;
      wpb::HeartbeatRequest request;
      request.set_worker_id(id);
      request.set_address(address);
      wpb::HeartbeatResponse response;
      return stub->Heartbeat(&ctx, request, &response);
    };

    std::string own_id;
    grpc::Status own = register_as("127.0.0.1:7001", &own_id);
    ASSERT_TRUE(own.ok()) << own.error_message();
    EXPECT_TRUE(heartbeat(own_id, "127.0.0.1:7001").ok());

    grpc::Status other = register_as("127.0.0.2:7003", nullptr);
    if (check) {
      EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_THAT(other.error_message(), HasSubstr("127.0.0.2:7003"));
      EXPECT_THAT(other.error_message(), HasSubstr("came from 127.0.0.1"));
      EXPECT_EQ(fleet.FreeWorkers(), 1);  // not taken: no replica formed
      EXPECT_EQ(heartbeat(own_id, "127.0.0.2:7001").error_code(),
                grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_EQ(register_as("no-such-host.invalid:7004", nullptr).error_code(),
                grpc::StatusCode::PERMISSION_DENIED);
      // A name that resolves to the peer's address is the same host.
      grpc::Status named = register_as("localhost:7002", nullptr);
      EXPECT_TRUE(named.ok()) << named.error_message();
    } else {
      EXPECT_TRUE(other.ok()) << other.error_message();  // (the replica it forms fails to load)
    }
    if (check) {
      grpc::Status portless = register_as("127.0.0.1", nullptr);
      EXPECT_EQ(portless.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_THAT(portless.error_message(), HasSubstr("HOST:PORT"));
    }
    server->Shutdown();
    fleet.Shutdown();
  }
}

}  // namespace
}  // namespace g4
