#include "coordinator/fleet/key_value_store_server.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4 {

void KeyValueStoreServer::Set(absl::string_view key, absl::string_view value) {
  absl::MutexLock lock(&mu_);
  map_[key] = std::string(value);
}

absl::StatusOr<std::string> KeyValueStoreServer::Get(absl::string_view key,
                                                     absl::Duration timeout,
                                                     const std::function<bool()>& cancelled) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string k(key);
  absl::MutexLock lock(&mu_);
  auto ready = [this, &k]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || map_.contains(k);
  };
  while (true) {
    auto it = map_.find(k);
    if (it != map_.end()) return it->second;
    if (shutdown_) return absl::UnavailableError("store is shutting down");
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("store key '", k, "' not set after ",
                                                      absl::FormatDuration(timeout)));
    }
    if (cancelled && cancelled()) return absl::CancelledError("store get cancelled");
    const absl::Duration slice = std::min(deadline - now, absl::Milliseconds(50));
    mu_.AwaitWithTimeout(absl::Condition(&ready), slice);
  }
}

void KeyValueStoreServer::ErasePrefix(absl::string_view prefix) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> doomed;
  for (const auto& [k, v] : map_) {
    if (absl::StartsWith(k, prefix)) doomed.push_back(k);
  }
  for (const std::string& k : doomed) map_.erase(k);
}

void KeyValueStoreServer::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

size_t KeyValueStoreServer::size() const {
  absl::MutexLock lock(&mu_);
  return map_.size();
}

}  // namespace g4
