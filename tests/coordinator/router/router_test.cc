#include "coordinator/router/router.h"

#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

class FixedSource final : public ReplicaSource {
 public:
  std::vector<ReplicaEndpoint> replicas;
  std::vector<ReplicaEndpoint> Endpoints() const override { return replicas; }
};

ReplicaEndpoint Replica(int index, bool ready) {
  ReplicaEndpoint e;
  e.index = index;
  e.ready = ready;
  e.leader_address = "127.0.0.1:" + std::to_string(1000 + index);
  return e;
}

TEST(RouterTest, PicksLeastLoadedReadyReplicaTiesByIndex) {
  FixedSource source;
  source.replicas = {Replica(0, true), Replica(1, true), Replica(2, true)};
  Router router(&source);
  absl::StatusOr<Router::Lease> a = router.Acquire();
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->replica().index, 0);
  absl::StatusOr<Router::Lease> b = router.Acquire();
  EXPECT_EQ(b->replica().index, 1);
  absl::StatusOr<Router::Lease> c = router.Acquire();
  EXPECT_EQ(c->replica().index, 2);
  absl::StatusOr<Router::Lease> d = router.Acquire();
  EXPECT_EQ(d->replica().index, 0);  // all at 1 → lowest index
  EXPECT_EQ(router.InFlight(0), 2);
  { Router::Lease released = *std::move(b); }
  EXPECT_EQ(router.InFlight(1), 0);
  absl::StatusOr<Router::Lease> e = router.Acquire();
  EXPECT_EQ(e->replica().index, 1);
}

TEST(RouterTest, SkipsReplicasThatAreNotReadyOrExcluded) {
  FixedSource source;
  source.replicas = {Replica(0, false), Replica(1, true), Replica(2, true)};
  Router router(&source);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Router::Lease> l = router.Acquire({1});
    ASSERT_TRUE(l.ok());
    EXPECT_EQ(l->replica().index, 2);
  }
}

TEST(RouterTest, UnavailableWhenNoReplicaIsReady) {
  FixedSource source;
  source.replicas = {Replica(0, false), Replica(1, true), Replica(2, false)};
  Router router(&source);
  source.replicas[1].ready = false;
  absl::StatusOr<Router::Lease> l = router.Acquire();
  EXPECT_EQ(l.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(l.status().message(), HasSubstr("no replica available (3 of 3 down)"));
  FixedSource empty;
  Router none(&empty);
  EXPECT_THAT(none.Acquire().status().message(), HasSubstr("(0 of 0 down)"));
}

TEST(RouterTest, MovedLeaseReleasesOnce) {
  FixedSource source;
  source.replicas = {Replica(0, true)};
  Router router(&source);
  {
    absl::StatusOr<Router::Lease> a = router.Acquire();
    Router::Lease moved = *std::move(a);
    Router::Lease again = std::move(moved);
    EXPECT_EQ(router.InFlight(0), 1);
  }
  EXPECT_EQ(router.InFlight(0), 0);
}

}  // namespace
}  // namespace g4
