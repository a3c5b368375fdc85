#include "proto/grpc_listen.h"

#include <grpc/support/log.h>

#include <cstdio>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/security/server_credentials.h"

namespace g4 {
namespace {

// gRPC's log lines while a server starts (gpr_set_log_function takes a plain function).
absl::Mutex g_capture_mu;
std::vector<std::string>* g_captured ABSL_GUARDED_BY(g_capture_mu) = nullptr;

void CaptureLog(gpr_log_func_args* args) {
  absl::MutexLock lock(&g_capture_mu);
  if (g_captured != nullptr) g_captured->push_back(args->message);
}

// Routes gRPC's log into a vector until End() (or destruction), then back to gRPC's default
// logger: gpr_set_log_function(nullptr) restores it (gRPC 1.51's log.cc).
class ScopedGrpcLogCapture {
 public:
  ScopedGrpcLogCapture() {
    {
      absl::MutexLock lock(&g_capture_mu);
      g_captured = &lines_;
    }
    gpr_set_log_function(CaptureLog);
  }
  ~ScopedGrpcLogCapture() { End(); }
  std::vector<std::string> End() {
    gpr_set_log_function(nullptr);
    absl::MutexLock lock(&g_capture_mu);
    g_captured = nullptr;
    return std::move(lines_);
  }

 private:
  std::vector<std::string> lines_;
};

// The OS's words from gRPC's nested error text (`os_error:"Address already in use"`), else the
// text itself, shortened.
std::string Reason(const std::vector<std::string>& lines) {
  for (const std::string& line : lines) {
    const std::string key = "os_error:\"";
    const size_t at = line.find(key);
    if (at == std::string::npos) continue;
    const size_t end = line.find('"', at + key.size());
    if (end != std::string::npos) return line.substr(at + key.size(), end - at - key.size());
  }
  if (lines.empty()) return "the address cannot be bound";
  std::string text = lines.front();
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

}  // namespace

absl::StatusOr<StartedGrpcServer> StartGrpcServer(
    grpc::ServerBuilder& builder, const std::string& address,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  StartedGrpcServer started;
  builder.AddListeningPort(
      address, credentials != nullptr ? credentials : grpc::InsecureServerCredentials(),
      &started.port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  ScopedGrpcLogCapture capture;
  started.server = builder.BuildAndStart();
  const std::vector<std::string> lines = capture.End();
  if (started.server == nullptr || started.port == 0) {
    if (started.server != nullptr) started.server->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, ": ", Reason(lines)));
  }
  // Started: whatever gRPC logged meanwhile (another thread's error) is not lost.
  for (const std::string& line : lines) std::fprintf(stderr, "grpc: %s\n", line.c_str());
  return started;
}

}  // namespace g4
