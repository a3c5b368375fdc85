#include "worker/comm/key_value_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace g4 {
namespace {

absl::Status KeyTimeout(absl::string_view key, absl::Duration timeout) {
  return absl::DeadlineExceededError(absl::StrCat(
      "rendezvous store: key '", key, "' not set within ", absl::FormatDuration(timeout)));
}

// Keys may contain '/' (prefixes); files live flat in the directory.
std::string EscapeKey(absl::string_view key) {
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.';
    if (plain) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::Hex(static_cast<unsigned char>(c), absl::kZeroPad2));
    }
  }
  return out;
}

}  // namespace

absl::Status InMemoryKeyValueStore::Set(absl::string_view key, absl::string_view value) {
  absl::MutexLock lock(&mu_);
  map_[std::string(key)] = std::string(value);
  return absl::OkStatus();
}

absl::StatusOr<std::string> InMemoryKeyValueStore::Get(absl::string_view key,
                                                       absl::Duration timeout) {
  const std::string k(key);
  absl::MutexLock lock(&mu_);
  auto present = [this, &k]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return map_.contains(k); };
  if (!mu_.AwaitWithTimeout(absl::Condition(&present), timeout)) return KeyTimeout(key, timeout);
  return map_.at(k);
}

DirectoryKeyValueStore::DirectoryKeyValueStore(std::string directory)
    : directory_(std::move(directory)) {}

std::string DirectoryKeyValueStore::PathFor(absl::string_view key) const {
  return absl::StrCat(directory_, "/", EscapeKey(key));
}

absl::Status DirectoryKeyValueStore::Set(absl::string_view key, absl::string_view value) {
  static std::atomic<uint64_t> counter{0};
  const std::string path = PathFor(key);
  const std::string tmp = absl::StrCat(directory_, "/.tmp.", getpid(), ".", counter++);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(value.data(), static_cast<std::streamsize>(value.size()));
    out.flush();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("rendezvous store: cannot write ", tmp, ": ", std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat("rendezvous store: cannot rename ", tmp, " to ",
                                               path, ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DirectoryKeyValueStore::Get(absl::string_view key,
                                                        absl::Duration timeout) {
  const std::string path = PathFor(key);
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Microseconds(200);
  while (true) {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      std::ostringstream contents;
      contents << in.rdbuf();
      return contents.str();
    }
    const absl::Time now = absl::Now();
    if (now >= deadline) return KeyTimeout(key, timeout);
    absl::SleepFor(std::min(backoff, deadline - now));
    backoff = std::min(backoff * 2, absl::Milliseconds(20));
  }
}

}  // namespace g4
