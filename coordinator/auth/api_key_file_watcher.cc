#include "coordinator/auth/api_key_file_watcher.h"

#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace g4 {

ApiKeyFileWatcher::ApiKeyFileWatcher(std::string path, std::string initial_text,
                                     std::vector<std::string> fixed_keys, ApiKeys* keys,
                                     absl::Duration interval,
                                     std::function<void(const std::string&)> log)
    : path_(std::move(path)),
      fixed_keys_(std::move(fixed_keys)),
      keys_(keys),
      interval_(interval),
      log_(std::move(log)),
      last_text_(std::move(initial_text)) {
  thread_ = std::thread([this] { Loop(); });
}

ApiKeyFileWatcher::~ApiKeyFileWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void ApiKeyFileWatcher::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), interval_);
      if (stop_) return;
    }
    CheckNow();
  }
}

bool ApiKeyFileWatcher::CheckNow() {
  std::ifstream in(path_, std::ios::binary);
  std::optional<std::string> text;  // nullopt: unreadable
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  {
    absl::MutexLock lock(&mu_);
    if (text == last_text_) return false;  // an unreadable file, too, logs once
    last_text_ = text;
  }
  absl::StatusOr<std::vector<std::string>> from_file = ApiKeys::ReadKeyFile(path_);
  absl::StatusOr<ApiKeys> next = absl::UnknownError("");
  if (from_file.ok()) {
    std::vector<std::string> all = fixed_keys_;
    all.insert(all.end(), from_file->begin(), from_file->end());
    next = ApiKeys::Create(all, "--api-key");
  }
  const absl::Status status = from_file.ok() ? next.status() : from_file.status();
  if (!status.ok()) {
    log_(absl::StrCat(status.message(), "; the API keys in force stay"));
    return false;
  }
  const size_t count = next->size();
  keys_->Replace(*std::move(next));
  log_(absl::StrCat("--api-key-file ", path_, " changed: ", count, " API key(s) in force"));
  return true;
}

}  // namespace g4
