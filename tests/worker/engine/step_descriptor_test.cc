#include "worker/engine/step_descriptor.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace g4 {
namespace {

TEST(StepDescriptorTest, RoundTrips) {
  StepDescriptor d;
  d.kind = StepDescriptor::Kind::kRun;
  d.step = 123456789012ull;
  d.freed = {7, 9};
  d.chunks.push_back({42, 0, {2, 3, 4}});
  d.chunks.push_back({43, 17, {5}});
  auto back = StepDescriptor::Parse(d.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kind, d.kind);
  EXPECT_EQ(back->step, d.step);
  EXPECT_EQ(back->freed, d.freed);
  ASSERT_EQ(back->chunks.size(), 2u);
  EXPECT_EQ(back->chunks[0].seq_id, 42u);
  EXPECT_EQ(back->chunks[1].start, 17);
  EXPECT_EQ(back->chunks[0].tokens, (std::vector<int32_t>{2, 3, 4}));
}

TEST(StepDescriptorTest, RoundTripsKvLayoutAndBlockTableDeltas) {
  StepDescriptor d;
  d.kv = StepKvLayout{16, 1000, 300};
  StepChunk c{5, 32, {1, 2}};
  c.table.global_append = {7, 8, 9};
  c.table.sliding_first_block = 3;
  c.table.sliding_append = {42};
  d.chunks.push_back(c);
  d.chunks.push_back({6, 0, {3}});
  const std::string bytes = d.Serialize();
  auto back = StepDescriptor::Parse(bytes);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->kv, d.kv);
  ASSERT_EQ(back->chunks.size(), 2u);
  EXPECT_EQ(back->chunks[0].table.global_append, c.table.global_append);
  EXPECT_EQ(back->chunks[0].table.sliding_first_block, 3);
  EXPECT_EQ(back->chunks[0].table.sliding_append, c.table.sliding_append);
  EXPECT_TRUE(back->chunks[1].table.empty());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(StepDescriptor::Parse(bytes.substr(0, n)).ok()) << n;
  }
}

TEST(StepDescriptorTest, HeartbeatIsSmall) {
  StepDescriptor d;
  d.kind = StepDescriptor::Kind::kHeartbeat;
  EXPECT_LE(d.Serialize().size(), 32u);
}

TEST(StepDescriptorTest, RejectsEveryTruncationAndGarbage) {
  StepDescriptor d;
  d.freed = {1};
  d.chunks.push_back({1, 0, {1, 2, 3}});
  const std::string bytes = d.Serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(StepDescriptor::Parse(bytes.substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(StepDescriptor::Parse(bytes + "x").ok());
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {  // random corruption never crashes
    std::string b = bytes;
    b[rng() % b.size()] = static_cast<char>(rng());
    (void)StepDescriptor::Parse(b);
  }
}

}  // namespace
}  // namespace g4
