// The gRPC receive limit is derived from what a request for the longest context can need
// (docs/limits.md "gRPC messages"), not a fixed 256 MiB.
#include "coordinator/api/request_limits.h"

#include "gtest/gtest.h"

namespace g4 {
namespace {

TEST(RequestLimitsTest, PromptTextBytes) {
  EXPECT_EQ(MaxPromptTextBytes(511, 93), 47523);
  EXPECT_EQ(MaxPromptTextBytes(511, 0), -1);  // no byte bound per token
}

TEST(RequestLimitsTest, GrpcReceiveLimitForGemma4) {
  // 262144 tokens of at most 93 bytes: a chat_json of twice the text, plus the other fields.
  EXPECT_EQ(GrpcMaxReceiveBytes(262144, 93, /*has_tokenizer=*/true),
            2 * 262144 * 93 + kGenerateRequestFieldBytes);
  EXPECT_LT(GrpcMaxReceiveBytes(262144, 93, true), 47 << 20);
  // Token ids only: 5 bytes per id.
  EXPECT_EQ(GrpcMaxReceiveBytes(262144, 0, /*has_tokenizer=*/false),
            5 * 262144 + 16 + kGenerateRequestFieldBytes);
  // A tokenizer without a byte bound keeps the old limit.
  EXPECT_EQ(GrpcMaxReceiveBytes(262144, 0, /*has_tokenizer=*/true), kFallbackGrpcReceiveBytes);
  // Every prompt form of the longest context fits.
  for (int64_t context : {512, 8192, 262144}) {
    const int64_t limit = GrpcMaxReceiveBytes(context, 93, true);
    EXPECT_GE(limit, MaxPromptTextBytes(context, 93) + kGenerateRequestFieldBytes);
    EXPECT_GE(limit, 5 * context + 16);
  }
}

}  // namespace
}  // namespace g4
