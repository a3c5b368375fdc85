#include "tools/load_generator/sse_parser.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4::load {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(SseParserTest, SplitsEventsAcrossFeeds) {
  SseParser p;
  EXPECT_THAT(p.Feed("data: {\"a\":1}\n\nda"), ElementsAre("{\"a\":1}"));
  EXPECT_THAT(p.Feed("ta: [DO"), IsEmpty());
  EXPECT_THAT(p.Feed("NE]\r\n\r\n"), ElementsAre("[DONE]"));
}

TEST(SseParserTest, IgnoresCommentsAndJoinsDataLines) {
  SseParser p;
  EXPECT_THAT(p.Feed(": keepalive\n\nevent: x\ndata:a\ndata: b\n\n"), ElementsAre("a\nb"));
}

}  // namespace
}  // namespace g4::load
