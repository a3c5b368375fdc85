// API keys on the public plane (docs/security.md), as vLLM's --api-key: a request is served only
// when it presents one of the configured keys, as `Authorization: Bearer <key>` (HTTP) or the
// `authorization` metadata with the same value (gRPC). Keys are compared in constant time (their
// SHA-256 digests, with CRYPTO_memcmp, against every configured key) and never logged or echoed:
// a key is known by its identity, "key:" and the first 16 hex digits of its SHA-256 digest,
// which is also the caller namespace of its requests' ids (docs/api.md "Request ids and Abort").
//
// Thread-safe. The set of keys can be replaced while requests are checked (Replace: an
// --api-key-file re-read on change, api_key_file_watcher.h).
#ifndef G4SERVE_COORDINATOR_AUTH_API_KEYS_H_
#define G4SERVE_COORDINATOR_AUTH_API_KEYS_H_

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace g4 {

// The header (HTTP) and metadata key (gRPC, lower case) that carry the key.
inline constexpr char kAuthorizationMetadataKey[] = "authorization";

// The environment variable whose value, when set and not empty, is one more key.
inline constexpr char kApiKeyEnvVar[] = "G4_API_KEY";

class ApiKeys {
 public:
  // No keys: everything is open (enabled() false).
  ApiKeys() = default;
  ApiKeys(ApiKeys&& other);
  ApiKeys& operator=(ApiKeys&& other);

  // INVALID_ARGUMENT (naming `source`, never the key) for an empty key, one with whitespace or
  // control characters, or one longer than 4096 bytes.
  static absl::StatusOr<ApiKeys> Create(const std::vector<std::string>& keys,
                                        absl::string_view source = "--api-key");

  // The keys of a key file: one per line; blank lines and lines starting with '#' are skipped,
  // surrounding whitespace trimmed. NOT_FOUND when unreadable, INVALID_ARGUMENT (with the line
  // number) for a bad key, and when the file holds no key.
  static absl::StatusOr<std::vector<std::string>> ReadKeyFile(const std::string& path);

  bool enabled() const;
  size_t size() const;

  // Takes `other`'s keys (all of them, at once): requests checked afterwards see only those.
  void Replace(ApiKeys other);

  // The identity of `key` when it is one of the keys; nullopt otherwise. Takes the same time
  // whichever key (if any) matches.
  std::optional<std::string> Identify(absl::string_view key) const;

  // The identity of the key in an Authorization value "Bearer <key>" (the scheme is
  // case-insensitive). UNAUTHENTICATED, with a message that names no key, when the value is
  // missing (nullopt), not a Bearer credential, or an unknown key.
  absl::StatusOr<std::string> Authenticate(std::optional<absl::string_view> authorization) const;

  // "key:" + the first 16 hex digits of SHA-256(key).
  static std::string IdentityOf(absl::string_view key);

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest DigestOf(absl::string_view key);

  struct KeySet {
    std::vector<Digest> digests;
    std::vector<std::string> identities;  // parallel to digests
  };
  std::shared_ptr<const KeySet> keys() const;

  // Behind a pointer so that ApiKeys stays movable (StatusOr<ApiKeys>).
  std::unique_ptr<absl::Mutex> mu_ = std::make_unique<absl::Mutex>();
  std::shared_ptr<const KeySet> keys_ ABSL_GUARDED_BY(*mu_) = std::make_shared<KeySet>();
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_AUTH_API_KEYS_H_
