// Unique temporary directories for tests.
//
// Names built from getpid() are not unique over a CI run: pid_max is 32768 in many containers
// and a full ctest run spawns more processes than that, so a later test could meet an earlier
// test's directory under the same name: its logs (appended to), its port files (read as the
// new server's). mkdtemp never hands out a name that exists.
#ifndef G4SERVE_TESTS_TESTING_TEMP_DIR_H_
#define G4SERVE_TESTS_TESTING_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "gtest/gtest.h"

namespace g4::testing {

// A fresh directory <::testing::TempDir()>/<prefix>.XXXXXX, removed with everything in it on
// destruction. Whatever runs in it (child processes) must be gone by then.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(std::string_view prefix = "g4test") {
    std::string tmpl = ::testing::TempDir();
    if (!tmpl.empty() && tmpl.back() != '/') tmpl += '/';
    tmpl.append(prefix).append(".XXXXXX");
    if (::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    } else {
      ADD_FAILURE() << "mkdtemp " << tmpl << " failed";
    }
  }
  ~ScopedTempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string File(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_TESTING_TEMP_DIR_H_
