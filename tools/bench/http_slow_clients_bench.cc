// Latency of normal HTTP requests to a running g4-coordinator, first unloaded, then while
// `--slow` connections trickle one header line per second (slowloris) and `--idle` connections
// sit open without sending anything, in the same run. Prints a table of p50 / p99 / max for
// GET /health on a new connection each time and for a small POST /v1/completions on one
// keep-alive connection. Run it through tools/bench/http_slow_clients_bench.sh, which starts a
// coordinator and a worker; numbers: docs/performance.md.
//
// Usage: g4-bench-http-slow-clients --port N [--slow 500] [--idle 500] [--requests 200]
//        [--model NAME] (--help lists the flags)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/flags/flag_set.h"
#include "httplib.h"
#include "tests/testing/loopback_socket.h"

namespace {

struct Args {
  int port = 0;
  int slow = 500;
  int idle = 500;
  int requests = 200;
  std::string model;
};

void DeclareFlags(g4::FlagSet& flags, Args& a) {
  flags.Add("port", &a.port, "the coordinator's HTTP port").Range(1, 65535).Required();
  flags.Add("slow", &a.slow, "slowloris connections (one header line per second)").Min(0);
  flags.Add("idle", &a.idle, "connections that stay open without sending anything").Min(0);
  flags.Add("requests", &a.requests, "timed requests of each kind per phase").Min(0);
  flags.Add("model", &a.model, "the completions' model field").Value("NAME");
}

int Connect(int port) { return ::g4::testing::ConnectLoopback(port); }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

struct Latencies {
  std::vector<double> health_ms, completion_ms;
  int failures = 0;
};

Latencies Measure(const Args& args) {
  Latencies out;
  httplib::Client keep_alive("127.0.0.1", args.port);
  keep_alive.set_read_timeout(std::chrono::seconds(30));
  const std::string body = absl::StrCat(
      R"({"prompt":"Hello","max_tokens":4,"temperature":0)",
      args.model.empty() ? "" : absl::StrCat(R"(,"model":")", args.model, "\""), "}");
  for (int i = 0; i < args.requests; ++i) {
    httplib::Client fresh("127.0.0.1", args.port);
    fresh.set_read_timeout(std::chrono::seconds(30));
    absl::Time start = absl::Now();
    auto h = fresh.Get("/health");
    out.health_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!h || h->status != 200) ++out.failures;
    start = absl::Now();
    auto c = keep_alive.Post("/v1/completions", body, "application/json");
    out.completion_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (!c || c->status != 200) ++out.failures;
  }
  return out;
}

void PrintRow(const char* name, const Latencies& l) {
  std::printf("| %-28s | %8.2f | %8.2f | %8.2f | %8.2f | %8.2f | %8.2f | %4d |\n", name,
              Percentile(l.health_ms, 0.5), Percentile(l.health_ms, 0.99),
              Percentile(l.health_ms, 1.0), Percentile(l.completion_ms, 0.5),
              Percentile(l.completion_ms, 0.99), Percentile(l.completion_ms, 1.0), l.failures);
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  g4::FlagSet flags("g4-bench-http-slow-clients", "--port N [flags]",
                    "/health and completion latency of a running g4-coordinator, unloaded and "
                    "under slow and idle connections (tools/bench/http_slow_clients_bench.sh).");
  DeclareFlags(flags, args);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-bench-http-slow-clients", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (static_cast<int>(limit.rlim_cur) < args.slow + args.idle + 64) {
    std::fprintf(stderr, "RLIMIT_NOFILE %d is too low for %d connections\n",
                 static_cast<int>(limit.rlim_cur), args.slow + args.idle);
    return 1;
  }

  Measure(args);  // warm-up
  const Latencies unloaded = Measure(args);

  std::vector<int> slow, idle;
  for (int i = 0; i < args.slow; ++i) {
    const int fd = Connect(args.port);
    if (fd < 0) break;
    const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n";
    send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  for (int i = 0; i < args.idle; ++i) {
    const int fd = Connect(args.port);
    if (fd < 0) break;
    idle.push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    for (int line = 0; !stop.load(); ++line) {
      const std::string header = absl::StrCat("X-Slow-", line, ": y\r\n");
      // Spread over the second, as independent clients would be.
      for (size_t i = 0; i < slow.size() && !stop.load(); ++i) {
        send(slow[i], header.data(), header.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        absl::SleepFor(absl::Seconds(1) / static_cast<double>(slow.size()));
      }
    }
  });
  const absl::Time loaded_start = absl::Now();
  const Latencies loaded = Measure(args);
  const double loaded_seconds = absl::ToDoubleSeconds(absl::Now() - loaded_start);
  stop = true;
  trickle.join();
  for (int fd : slow) close(fd);
  for (int fd : idle) close(fd);

  std::printf("%d requests of each kind per row; latency in ms\n", args.requests);
  std::printf("| %-28s | %-8s | %-8s | %-8s | %-8s | %-8s | %-8s | %-4s |\n", "scenario",
              "health50", "health99", "healthmx", "compl50", "compl99", "complmx", "fail");
  std::printf("|%s|\n", std::string(107, '-').c_str());
  PrintRow("unloaded", unloaded);
  PrintRow(absl::StrCat(slow.size(), " slow + ", idle.size(), " idle conns").c_str(), loaded);
  std::printf("loaded run took %.1f s (the connections must stay open through it: keep it under "
              "the server's header timeout, 10 s by default)\n",
              loaded_seconds);
  return unloaded.failures + loaded.failures == 0 ? 0 : 1;
}
