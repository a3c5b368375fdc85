#include "coordinator/fleet/key_value_store_server.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace g4 {

void KeyValueStoreServer::OpenPrefix(absl::string_view prefix) {
  if (prefix.empty()) return;  // an empty prefix would open every key
  absl::MutexLock lock(&mu_);
  open_prefixes_.insert(std::string(prefix));
}

bool KeyValueStoreServer::OpenLocked(absl::string_view key) const {
  // Few loads are in progress at once: a scan is cheap.
  for (const std::string& prefix : open_prefixes_) {
    if (absl::StartsWith(key, prefix)) return true;
  }
  return false;
}

absl::Status KeyValueStoreServer::Set(absl::string_view key, absl::string_view value) {
  if (key.empty()) return absl::InvalidArgumentError("key: required");
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: at most ", limits_.max_key_bytes, " bytes, got ", key.size()));
  }
  if (value.size() > limits_.max_value_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("value: at most ", limits_.max_value_bytes, " bytes, got ", value.size()));
  }
  absl::MutexLock lock(&mu_);
  if (!OpenLocked(key)) {
    return absl::FailedPreconditionError("key: not under a load in progress");
  }
  auto it = map_.find(key);
  const size_t old_bytes = it == map_.end() ? 0 : key.size() + it->second.size();
  const size_t new_total = total_bytes_ - old_bytes + key.size() + value.size();
  if (new_total > limits_.max_total_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("store: full (", limits_.max_total_bytes, " bytes)"));
  }
  total_bytes_ = new_total;
  map_[key] = std::string(value);
  return absl::OkStatus();
}

absl::StatusOr<std::string> KeyValueStoreServer::Get(absl::string_view key,
                                                     absl::Duration timeout,
                                                     const std::function<bool()>& cancelled) {
  if (key.empty()) return absl::InvalidArgumentError("key: required");
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key: at most ", limits_.max_key_bytes, " bytes, got ", key.size()));
  }
  const absl::Duration wait = std::min(timeout, limits_.max_wait);
  const absl::Time deadline = absl::Now() + wait;
  const std::string k(key);
  absl::MutexLock lock(&mu_);
  auto ready = [this, &k]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || map_.contains(k);
  };
  bool waiting = false;
  auto finish = [&](absl::StatusOr<std::string> result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (waiting) --waiters_;
    return result;
  };
  while (true) {
    auto it = map_.find(k);
    if (it != map_.end()) return finish(it->second);
    if (shutdown_) return finish(absl::UnavailableError("store is shutting down"));
    if (!OpenLocked(k)) {
      return finish(absl::FailedPreconditionError(
          absl::StrCat("store key '", k, "': not under a load in progress")));
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return finish(absl::DeadlineExceededError(absl::StrCat(
          "store key '", k, "' not set after ", absl::FormatDuration(wait))));
    }
    if (cancelled && cancelled()) return finish(absl::CancelledError("store get cancelled"));
    if (!waiting) {
      if (waiters_ >= limits_.max_waiters) {
        return absl::ResourceExhaustedError(
            absl::StrCat("store: ", limits_.max_waiters, " gets already waiting"));
      }
      ++waiters_;
      waiting = true;
    }
    const absl::Duration slice = std::min(deadline - now, absl::Milliseconds(50));
    mu_.AwaitWithTimeout(absl::Condition(&ready), slice);
  }
}

void KeyValueStoreServer::ErasePrefix(absl::string_view prefix) {
  absl::MutexLock lock(&mu_);
  open_prefixes_.erase(std::string(prefix));
  std::vector<std::string> doomed;
  for (const auto& [k, v] : map_) {
    if (absl::StartsWith(k, prefix)) doomed.push_back(k);
  }
  for (const std::string& k : doomed) {
    auto it = map_.find(k);
    total_bytes_ -= it->first.size() + it->second.size();
    map_.erase(it);
  }
}

void KeyValueStoreServer::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

size_t KeyValueStoreServer::size() const {
  absl::MutexLock lock(&mu_);
  return map_.size();
}

size_t KeyValueStoreServer::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

}  // namespace g4
