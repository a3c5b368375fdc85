#include "coordinator/auth/api_keys.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace g4 {
namespace {

constexpr size_t kMaxKeyBytes = 4096;

// Printable ASCII without spaces: what fits an HTTP header token and a shell flag.
bool IsKeyChar(char c) { return c > 0x20 && c < 0x7f; }

absl::Status CheckKey(absl::string_view key, absl::string_view where) {
  if (key.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty API key"));
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": API key longer than ", kMaxKeyBytes, " bytes"));
  }
  for (char c : key) {
    if (!IsKeyChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": API key with whitespace or a non-printable character (printable ASCII only)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

ApiKeys::Digest ApiKeys::DigestOf(absl::string_view key) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), d.data());
  return d;
}

std::string ApiKeys::IdentityOf(absl::string_view key) {
  const Digest d = DigestOf(key);
  return absl::StrCat("key:", absl::BytesToHexString(absl::string_view(
                                  reinterpret_cast<const char*>(d.data()), 8)));
}

// Not through Replace: its by-value parameter is move-constructed.
ApiKeys::ApiKeys(ApiKeys&& other) {
  std::shared_ptr<const KeySet> taken = other.keys();
  absl::MutexLock lock(mu_.get());
  keys_ = std::move(taken);
}

ApiKeys& ApiKeys::operator=(ApiKeys&& other) {
  if (this == &other) return *this;
  std::shared_ptr<const KeySet> taken = other.keys();
  absl::MutexLock lock(mu_.get());
  keys_ = std::move(taken);
  return *this;
}

std::shared_ptr<const ApiKeys::KeySet> ApiKeys::keys() const {
  absl::ReaderMutexLock lock(mu_.get());
  return keys_;
}

void ApiKeys::Replace(ApiKeys other) { *this = std::move(other); }

bool ApiKeys::enabled() const { return !keys()->digests.empty(); }

size_t ApiKeys::size() const { return keys()->digests.size(); }

absl::StatusOr<ApiKeys> ApiKeys::Create(const std::vector<std::string>& keys,
                                        absl::string_view source) {
  auto set = std::make_shared<KeySet>();
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key, source); !s.ok()) return s;
    set->digests.push_back(DigestOf(key));
    set->identities.push_back(IdentityOf(key));
  }
  ApiKeys out;
  {
    absl::MutexLock lock(out.mu_.get());
    out.keys_ = std::move(set);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ApiKeys::ReadKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--api-key-file: cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(ss.str(), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (absl::Status s = CheckKey(line, absl::StrCat("--api-key-file: ", path, ":", line_number));
        !s.ok()) {
      return s;
    }
    keys.emplace_back(line);
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--api-key-file: no key in ", path));
  }
  return keys;
}

std::optional<std::string> ApiKeys::Identify(absl::string_view key) const {
  // Digests have one length whatever the key's, and every configured key is compared: the time
  // tells neither a key's length nor which key (or how much of one) matched.
  const Digest presented = DigestOf(key);
  const std::shared_ptr<const KeySet> set = keys();
  int match = -1;
  for (size_t i = 0; i < set->digests.size(); ++i) {
    const bool equal =
        CRYPTO_memcmp(presented.data(), set->digests[i].data(), presented.size()) == 0;
    match = equal ? static_cast<int>(i) : match;
  }
  if (match < 0) return std::nullopt;
  return set->identities[match];
}

absl::StatusOr<std::string> ApiKeys::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "missing API key: send it as 'Authorization: Bearer <key>' (gRPC: the authorization "
        "metadata)");
  }
  absl::string_view value = absl::StripAsciiWhitespace(*authorization);
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization header is not 'Bearer <key>'");
  }
  value.remove_prefix(kScheme.size());
  value = absl::StripLeadingAsciiWhitespace(value);
  std::optional<std::string> identity = Identify(value);
  if (!identity.has_value()) return absl::UnauthenticatedError("incorrect API key provided");
  return *std::move(identity);
}

}  // namespace g4
