// The JSON nesting bound: the scan's depth, strings and escapes, and the errors it gives.
#include "common/json_depth.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace g4 {
namespace {

using ::testing::HasSubstr;

std::string Nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonDepthTest, CountsArraysAndObjects) {
  EXPECT_EQ(JsonTextDepth("1"), 0);
  EXPECT_EQ(JsonTextDepth("[]"), 1);
  EXPECT_EQ(JsonTextDepth(R"({"a":[1,{"b":[]}],"c":{}})"), 4);
  EXPECT_EQ(JsonTextDepth(Nested(64)), 64);
}

TEST(JsonDepthTest, BracketsInsideStringsDoNotCount) {
  EXPECT_EQ(JsonTextDepth(R"(["[[[[{{{{", "\"[[[["])"), 1);
  // An escaped backslash ends the escape: the quote after it closes the string.
  EXPECT_EQ(JsonTextDepth(R"(["\\", [[]]])"), 3);
}

TEST(JsonDepthTest, StopsScanningOnceOverTheLimit) {
  const std::string deep = Nested(1000000);
  EXPECT_EQ(JsonTextDepth(deep, 64), 65);
  EXPECT_EQ(JsonTextDepth(deep, 2000000), 1000000);
}

TEST(JsonDepthTest, CheckNamesTheFieldAndTheLimit) {
  EXPECT_TRUE(CheckJsonTextDepth(Nested(kMaxJsonDepth), "body").ok());
  absl::Status s = CheckJsonTextDepth(Nested(kMaxJsonDepth + 1), "body");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "body: JSON nested deeper than 64 levels");
}

TEST(JsonDepthTest, ParseJsonBoundedRefusesBeforeParsing) {
  auto ok = ParseJsonBounded<nlohmann::json>(R"({"a":[1]})", "chat_json");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)["a"][0], 1);
  auto deep = ParseJsonBounded<nlohmann::json>(Nested(100000, '{', '}'), "chat_json");
  EXPECT_THAT(deep.status().message(), HasSubstr("chat_json: JSON nested deeper than 64"));
  auto bad = ParseJsonBounded<nlohmann::json>("[1,", "chat_json");
  EXPECT_EQ(bad.status().message(), "chat_json: malformed JSON");
}

TEST(JsonDepthTest, ValueDepthWalksWithoutRecursion) {
  EXPECT_EQ(JsonValueDepth(nlohmann::json(1)), 0);
  EXPECT_EQ(JsonValueDepth(nlohmann::json::parse(R"({"a":[1,{"b":[]}],"c":{}})")), 4);
  // nlohmann parses (and destroys) without recursion; only walking it recursively would fail.
  nlohmann::ordered_json deep = nlohmann::ordered_json::parse(Nested(200000));
  EXPECT_EQ(JsonValueDepth(deep), 200000);
}

}  // namespace
}  // namespace g4
