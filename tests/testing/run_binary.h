// Runs a command line (a CLI under test) through the shell and captures its stdout, stderr and
// exit code. ctest runs each test case as its own process, in parallel: the stderr capture file
// is unique per process and call.
#ifndef G4SERVE_TESTS_TESTING_RUN_BINARY_H_
#define G4SERVE_TESTS_TESTING_RUN_BINARY_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace g4::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `binary + " " + args` with /bin/sh (so `args` may quote and redirect stdin).
inline RunResult RunBinary(const std::string& binary, const std::string& args) {
  static int calls = 0;
  const std::string err_file = ::testing::TempDir() + "/run_binary_stderr." +
                               std::to_string(getpid()) + "." + std::to_string(calls++);
  const std::string cmd = binary + " " + args + " 2>" + err_file;
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.err = ss.str();
  std::remove(err_file.c_str());
  return r;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_TESTING_RUN_BINARY_H_
