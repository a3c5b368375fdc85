// The migration decisions (coordinator/api/migration.h): which errors move a request, which
// replicas' streams are moved, and the resumed request.
#include "coordinator/api/migration.h"

#include "gtest/gtest.h"

namespace g4 {
namespace {

TEST(MigrationTest, ReplicaFailuresMigrateTheRequestsOwnErrorsDoNot) {
  for (absl::Status s : {absl::UnavailableError("replica failed"),
                         absl::FailedPreconditionError("Generate: worker is not ready"),
                         absl::AbortedError("x"), absl::UnknownError("stream removed")}) {
    ASSERT_TRUE(MigrationFor(s, /*evacuated=*/false).has_value()) << s;
    EXPECT_EQ(*MigrationFor(s, false), MigrationReason::kStreamFailed) << s;
  }
  for (absl::Status s : {absl::InvalidArgumentError("temperature"),
                         absl::ResourceExhaustedError("queue full"),
                         absl::DeadlineExceededError("deadline"), absl::CancelledError("client"),
                         absl::InternalError("bad token"), absl::NotFoundError("model")}) {
    EXPECT_FALSE(MigrationFor(s, false).has_value()) << s;
  }
  // Cancelled by the coordinator because the replica left service.
  EXPECT_EQ(MigrationFor(absl::CancelledError("x"), /*evacuated=*/true),
            MigrationReason::kReplicaUnavailable);
  EXPECT_STREQ(MigrationReasonName(MigrationReason::kStreamFailed), "stream_failed");
  EXPECT_STREQ(MigrationReasonName(MigrationReason::kReplicaUnavailable), "replica_unavailable");
}

ReplicaEndpoint Endpoint(int index, bool ready, bool draining, absl::Time since) {
  ReplicaEndpoint e;
  e.index = index;
  e.ready = ready;
  e.draining = draining;
  e.since = since;
  return e;
}

TEST(MigrationTest, StreamsLeaveReplicasOutOfServiceWhenAnotherCanTakeThem) {
  const absl::Time now = absl::Now();
  const absl::Duration limit = absl::Seconds(30);
  // 0 READY, 1 out of service, 2 draining (finishes its streams), 3 out of service long ago.
  const std::vector<ReplicaEndpoint> replicas = {
      Endpoint(0, true, false, now - absl::Minutes(5)), Endpoint(1, false, false, now),
      Endpoint(2, false, true, now - absl::Minutes(5)),
      Endpoint(3, false, false, now - absl::Minutes(5))};
  EXPECT_EQ(ReplicasToEvacuate(replicas, now, limit), (absl::flat_hash_set<int>{1, 3}));
  // No replica READY: streams wait for their replica, up to the stall limit.
  const std::vector<ReplicaEndpoint> none_ready = {Endpoint(1, false, false, now - absl::Seconds(5)),
                                                   Endpoint(3, false, false, now - limit)};
  EXPECT_EQ(ReplicasToEvacuate(none_ready, now, limit), (absl::flat_hash_set<int>{3}));
  EXPECT_TRUE(ReplicasToEvacuate({}, now, limit).empty());
}

TEST(MigrationTest, ResumedRequestCarriesTheRelayedTokens) {
  g4serve::worker::v1::WorkerGenerateRequest r;
  r.add_resume_output_token_ids(99);  // replaced, not appended to
  SetResumedTokens({5, 6, 7}, &r);
  ASSERT_EQ(r.resume_output_token_ids_size(), 3);
  EXPECT_EQ(r.resume_output_token_ids(2), 7);
  SetResumedTokens({}, &r);
  EXPECT_EQ(r.resume_output_token_ids_size(), 0);
}

}  // namespace
}  // namespace g4
