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

absl::StatusOr<ApiKeys> ApiKeys::Create(const std::vector<std::string>& keys,
                                        absl::string_view source) {
  ApiKeys out;
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key, source); !s.ok()) return s;
    out.digests_.push_back(DigestOf(key));
    out.identities_.push_back(IdentityOf(key));
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
  int match = -1;
  for (size_t i = 0; i < digests_.size(); ++i) {
    const bool equal = CRYPTO_memcmp(presented.data(), digests_[i].data(), presented.size()) == 0;
    match = equal ? static_cast<int>(i) : match;
  }
  if (match < 0) return std::nullopt;
  return identities_[match];
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
