// A real Prometheus (Debian's `prometheus` package) for multi-process tests: loopback, a free
// port, a scrape interval of 1 s, TSDB under the test's directory; killed with the Process.
#ifndef G4SERVE_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_
#define G4SERVE_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/common/metrics/test_util.h"
#include "tests/integration/process.h"

namespace g4::testing {

// One scrape job: its targets (host:port) and extra target labels.
struct ScrapeJob {
  std::string name;
  std::vector<std::string> targets;
  std::vector<std::pair<std::string, std::string>> labels;
};

// The prometheus binary, or "" when it is not installed.
inline std::string PrometheusBinary() {
  return FindExecutable({"/usr/bin/prometheus", "/usr/local/bin/prometheus"});
}

// Writes DIR/prometheus.yml for `jobs` and starts `prometheus` on a free loopback port; returns
// the port, or -1.
inline int StartPrometheus(const std::string& binary, const std::filesystem::path& dir,
                           const std::vector<ScrapeJob>& jobs, Process* process) {
  std::filesystem::create_directories(dir / "data");
  {
    std::ofstream config(dir / "prometheus.yml");
    config << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n";
    for (const ScrapeJob& job : jobs) {
      config << "  - job_name: " << job.name << "\n    static_configs:\n      - targets: ['"
             << absl::StrJoin(job.targets, "', '") << "']\n";
      if (!job.labels.empty()) {
        config << "        labels:\n";
        for (const auto& [k, v] : job.labels) config << "          " << k << ": '" << v << "'\n";
      }
    }
  }
  const int port = FreeLoopbackPort();
  if (port <= 0) return -1;
  if (!process->Start({binary, absl::StrCat("--config.file=", (dir / "prometheus.yml").string()),
                       absl::StrCat("--storage.tsdb.path=", (dir / "data").string()),
                       absl::StrCat("--web.listen-address=127.0.0.1:", port)},
                      (dir / "prometheus.log").string())) {
    return -1;
  }
  return port;
}

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_INTEGRATION_PROMETHEUS_PROCESS_H_
