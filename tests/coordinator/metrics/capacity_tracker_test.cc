#include "coordinator/metrics/capacity_tracker.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/metrics/capacity_metrics.h"
#include "common/metrics/metrics_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace wpb = ::g4serve::worker::v1;

wpb::HealthResponse Leader(int64_t global_total, int64_t global_available, int64_t sliding_total,
                           int64_t sliding_available) {
  wpb::HealthResponse h;
  h.set_kv_block_size(16);
  h.set_kv_global_pages_total(global_total);
  h.set_kv_global_pages_available(global_available);
  h.set_kv_global_pages_peak(global_total - global_available);
  h.set_kv_sliding_pages_total(sliding_total);
  h.set_kv_sliding_pages_available(sliding_available);
  h.set_kv_sliding_pages_peak(3);
  return h;
}

TEST(CapacityTrackerTest, SequencesThatFitTakeTheScarcerPool) {
  // 4096 tokens: 256 global pages; sliding: min(256, ceil(1023/16) + 1 = 65).
  EXPECT_EQ(SequencesThatFit(Leader(10000, 1024, 1000, 1000), 1024, 4096), 4);   // global bound
  EXPECT_EQ(SequencesThatFit(Leader(10000, 10000, 1000, 130), 1024, 4096), 2);   // sliding bound
  EXPECT_EQ(SequencesThatFit(Leader(10000, 255, 1000, 1000), 1024, 4096), 0);
  // Short sequences need fewer sliding pages than the window's: 100 tokens = 7 pages each.
  EXPECT_EQ(SequencesThatFit(Leader(100000, 100000, 70, 70), 1024, 100), 10);
  // A model without sliding layers: the global pool alone.
  EXPECT_EQ(SequencesThatFit(Leader(1000, 512, 0, 0), 0, 4096), 2);
  EXPECT_EQ(SequencesThatFit(wpb::HealthResponse(), 1024, 4096), 0);  // no paged KV reported
}

TEST(CapacityTrackerTest, PublishesPerReplicaSeriesAndDropsGoneOnes) {
  prometheus::Registry registry;
  auto metrics = CapacityMetrics::Create(registry, {"g4serve_", "long"});
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  CapacityTracker tracker(metrics->get(), {1024, 4096});
  ReplicaStatus ready, loading;
  ready.index = 0;
  ready.state = ReplicaState::kReady;
  ready.max_context = 262144;
  loading.index = 1;
  loading.state = ReplicaState::kLoading;
  tracker.ObserveReplicas({ready, loading});
  tracker.ObserveHealth({{0, 0, "w0", Leader(16400, 16400, 4096, 4096)},
                         {0, 1, "w1", wpb::HealthResponse()}});
  std::string text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("g4serve_kv_cache_pages{model_name=\"long\",pool=\"full\",replica=\"0\"} 16400"));
  EXPECT_THAT(text, HasSubstr("g4serve_kv_cache_available_pages{model_name=\"long\",pool=\"sliding\",replica=\"0\"} 4096"));
  // 262144 tokens: 16384 global pages, so one fits; 4096 tokens: 64 global fit, 63 sliding.
  EXPECT_THAT(text, HasSubstr("g4serve_capacity_sequences{context=\"max\",model_name=\"long\",replica=\"0\"} 1"));
  EXPECT_THAT(text, HasSubstr("g4serve_capacity_sequences{context=\"typical\",model_name=\"long\",replica=\"0\"} 63"));
  EXPECT_THAT(text, HasSubstr("g4serve_capacity_sequences{context=\"max\",model_name=\"long\",replica=\"1\"} 0"));
  EXPECT_THAT(text, HasSubstr("g4serve_capacity_context_tokens{context=\"max\",model_name=\"long\"} 262144"));

  // Replica 0 fails: its pages go, its capacity is 0.
  ready.state = ReplicaState::kUnavailable;
  ready.reason = "unreachable";
  tracker.ObserveReplicas({ready, loading});
  tracker.ObserveHealth({});
  text = SerializeMetricsText(registry);
  EXPECT_THAT(text, Not(HasSubstr("g4serve_kv_cache_pages{")));
  EXPECT_THAT(text, HasSubstr("g4serve_capacity_sequences{context=\"max\",model_name=\"long\",replica=\"0\"} 0"));

  (*metrics)->SetPlanInfo({{"tensor_parallel_size", "2"}, {"bad-label", "x"}});
  text = SerializeMetricsText(registry);
  EXPECT_THAT(text, HasSubstr("g4serve_plan_info{model_name=\"long\",tensor_parallel_size=\"2\"} 1"));
}

}  // namespace
}  // namespace g4
