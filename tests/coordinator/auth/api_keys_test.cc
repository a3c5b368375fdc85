// ApiKeys (coordinator/auth/api_keys.h): which keys are accepted, what the errors say (never a
// key), identities, and the key file format.
#include "coordinator/auth/api_keys.h"

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ApiKeysTest, NoKeysIsOpen) {
  ApiKeys keys;
  EXPECT_FALSE(keys.enabled());
  absl::StatusOr<ApiKeys> created = ApiKeys::Create({});
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(created->enabled());
}

TEST(ApiKeysTest, AcceptsEveryConfiguredKeyAndNothingElse) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"sk-alpha-123", "sk-beta-456"});
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_TRUE(keys->enabled());
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(keys->Identify("sk-alpha-123"), ApiKeys::IdentityOf("sk-alpha-123"));
  EXPECT_EQ(keys->Identify("sk-beta-456"), ApiKeys::IdentityOf("sk-beta-456"));
  EXPECT_NE(ApiKeys::IdentityOf("sk-alpha-123"), ApiKeys::IdentityOf("sk-beta-456"));
  for (const char* wrong : {"", "sk-alpha-12", "sk-alpha-1234", "SK-ALPHA-123", "sk-beta-456 "}) {
    EXPECT_EQ(keys->Identify(wrong), std::nullopt) << wrong;
  }
}

TEST(ApiKeysTest, IdentityNamesNoKey) {
  const std::string id = ApiKeys::IdentityOf("sk-secret-value");
  EXPECT_THAT(id, ::testing::MatchesRegex("key:[0-9a-f]{16}"));
  EXPECT_THAT(id, Not(HasSubstr("secret")));
}

TEST(ApiKeysTest, AuthenticateTakesBearerCredentials) {
  absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"sk-alpha-123"});
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys->Authenticate("Bearer sk-alpha-123"), ApiKeys::IdentityOf("sk-alpha-123"));
  EXPECT_EQ(*keys->Authenticate("bearer  sk-alpha-123 "), ApiKeys::IdentityOf("sk-alpha-123"));
  struct Case {
    std::optional<absl::string_view> value;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{{std::nullopt, "missing API key"},
                                         {"", "not 'Bearer <key>'"},
                                         {"sk-alpha-123", "not 'Bearer <key>'"},
                                         {"Basic sk-alpha-123", "not 'Bearer <key>'"},
                                         {"Bearer sk-wrong-999", "incorrect API key"},
                                         {"Bearer ", "not 'Bearer <key>'"},
                                         {"Bearer  sk-alpha-1234", "incorrect API key"}}) {
    absl::StatusOr<std::string> got = keys->Authenticate(c.value);
    ASSERT_FALSE(got.ok()) << c.value.value_or("(none)");
    EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(got.status().message(), HasSubstr(c.message));
    EXPECT_THAT(got.status().message(), Not(HasSubstr("sk-")));  // neither key is echoed
  }
}

TEST(ApiKeysTest, RefusesKeysThatCannotTravelInAHeader) {
  for (const std::string& bad : {std::string(""), std::string("has space"),
                                 std::string("tab\tkey"), std::string("nl\nkey"),
                                 std::string(4097, 'k')}) {
    absl::StatusOr<ApiKeys> keys = ApiKeys::Create({"good-key", bad}, "--api-key");
    ASSERT_FALSE(keys.ok());
    EXPECT_EQ(keys.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(keys.status().message(), HasSubstr("--api-key"));
    if (!bad.empty()) EXPECT_THAT(keys.status().message(), Not(HasSubstr(bad)));
  }
}

TEST(ApiKeysTest, ReadsKeyFiles) {
  const std::string path = ::testing::TempDir() + "/api_keys_test.keys";
  {
    std::ofstream out(path);
    out << "# keys of team a\n\n  sk-one  \nsk-two\n# sk-commented\n";
  }
  absl::StatusOr<std::vector<std::string>> keys = ApiKeys::ReadKeyFile(path);
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ(*keys, (std::vector<std::string>{"sk-one", "sk-two"}));
  {
    std::ofstream out(path);
    out << "# nothing\n\n";
  }
  EXPECT_EQ(ApiKeys::ReadKeyFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  {
    std::ofstream out(path);
    out << "sk-one\nsk two words\n";
  }
  absl::StatusOr<std::vector<std::string>> bad = ApiKeys::ReadKeyFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr(":2"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("two words")));
  std::remove(path.c_str());
  EXPECT_EQ(ApiKeys::ReadKeyFile(path).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace g4
