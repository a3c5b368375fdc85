// --api-key-file re-read on change (docs/security.md, "API keys"): every `interval` the file is
// read again; when its text changed and it holds valid keys, the coordinator's ApiKeys become
// the fixed keys (--api-key, G4_API_KEY) plus the file's new ones, at once, without a restart.
// A file that cannot be read, has a bad key or no key at all changes nothing: the keys in force
// stay, and one line (naming the file and line, never a key) goes to `log`. So emptying or
// breaking the file never opens the API.
#ifndef G4SERVE_COORDINATOR_AUTH_API_KEY_FILE_WATCHER_H_
#define G4SERVE_COORDINATOR_AUTH_API_KEY_FILE_WATCHER_H_

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/auth/api_keys.h"

namespace g4 {

class ApiKeyFileWatcher {
 public:
  // Starts watching `path`, whose text at start was `initial_text` (what `keys` hold now with
  // `fixed_keys`). `keys` must outlive the watcher.
  ApiKeyFileWatcher(std::string path, std::string initial_text,
                    std::vector<std::string> fixed_keys, ApiKeys* keys, absl::Duration interval,
                    std::function<void(const std::string&)> log);
  ~ApiKeyFileWatcher();  // stops the thread

  ApiKeyFileWatcher(const ApiKeyFileWatcher&) = delete;
  ApiKeyFileWatcher& operator=(const ApiKeyFileWatcher&) = delete;

  // One round now (what the thread does every interval); true when the keys were replaced.
  bool CheckNow();

 private:
  void Loop();

  const std::string path_;
  const std::vector<std::string> fixed_keys_;
  ApiKeys* const keys_;
  const absl::Duration interval_;
  const std::function<void(const std::string&)> log_;
  absl::Mutex mu_;
  // The text in force, or the last one refused; nullopt: the file could not be read.
  std::optional<std::string> last_text_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_AUTH_API_KEY_FILE_WATCHER_H_
