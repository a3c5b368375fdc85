#include "worker/comm/gloo_store_adapter.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace g4 {

GlooStoreAdapter::GlooStoreAdapter(KeyValueStore* store, std::string prefix,
                                   absl::Duration default_timeout)
    : store_(store), prefix_(std::move(prefix)), default_timeout_(default_timeout) {}

std::string GlooStoreAdapter::FullKey(const std::string& key) const {
  return absl::StrCat(prefix_, "/", key);
}

void GlooStoreAdapter::set(const std::string& key, const std::vector<char>& data) {
  absl::Status status = store_->Set(FullKey(key), absl::string_view(data.data(), data.size()));
  if (!status.ok()) throw GlooStoreError(std::move(status));
}

std::vector<char> GlooStoreAdapter::get(const std::string& key) {
  absl::StatusOr<std::string> value = store_->Get(FullKey(key), default_timeout_);
  if (!value.ok()) throw GlooStoreError(value.status());
  return std::vector<char>(value->begin(), value->end());
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys) {
  WaitAll(keys, default_timeout_);
}

void GlooStoreAdapter::wait(const std::vector<std::string>& keys,
                            const std::chrono::milliseconds& timeout) {
  // Gloo passes kNoTimeout (0) to mean "no timeout"; we never wait unboundedly.
  const absl::Duration d = timeout.count() > 0 ? absl::FromChrono(timeout) : default_timeout_;
  WaitAll(keys, std::min(d, default_timeout_));
}

void GlooStoreAdapter::WaitAll(const std::vector<std::string>& keys, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  for (const std::string& key : keys) {
    absl::StatusOr<std::string> value =
        store_->Get(FullKey(key), std::max(deadline - absl::Now(), absl::ZeroDuration()));
    if (!value.ok()) throw GlooStoreError(value.status());
  }
}

}  // namespace g4
