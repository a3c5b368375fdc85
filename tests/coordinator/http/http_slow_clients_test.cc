// Slow and idle clients cannot starve the HTTP API (issue: 64 connections sending a header line
// every 5 s blocked every request of the thread-per-connection server):
// * 1,000 connections open at once (500 trickling one header line per second, 500 idle) while
//   /health and a real completion keep answering promptly;
// * the head deadline is absolute: the trickling clients are cut when it passes, although each
//   sent a line every second;
// * at the connection cap, busy connections over it are answered 503 and closed at once, idle
//   ones are shed for new ones.
// Bounds are generous (a regression test, not a benchmark: tools/bench/http_slow_clients_bench
// measures latency).
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/coordinator/http/http_test_fixture.h"

namespace g4 {
namespace {

using ::g4::testing::Eventually;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Raises the soft descriptor limit to the hard one; true when `need` descriptors are allowed.
bool EnsureDescriptors(int need, int* have) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  *have = limit.rlim_cur == RLIM_INFINITY ? 1 << 30 : static_cast<int>(limit.rlim_cur);
  return *have >= need;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

// Waits until the server closes each of `fds` (EOF or reset); returns when each closed, or
// InfiniteFuture for those still open at `deadline`.
std::vector<absl::Time> WaitClosed(const std::vector<int>& fds, absl::Time deadline) {
  std::vector<absl::Time> closed(fds.size(), absl::InfiniteFuture());
  size_t open = fds.size();
  char buf[512];
  while (open > 0 && absl::Now() < deadline) {
    std::vector<pollfd> polls;
    std::vector<size_t> index;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (closed[i] != absl::InfiniteFuture()) continue;
      polls.push_back({fds[i], POLLIN, 0});
      index.push_back(i);
    }
    if (poll(polls.data(), polls.size(), 50) <= 0) continue;
    for (size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      const ssize_t n = recv(polls[k].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        closed[index[k]] = absl::Now();
        --open;
      }
    }
  }
  return closed;
}

class HttpSlowClientsTest : public ::g4::testing::HttpServerTest {
 protected:
  static constexpr absl::Duration kHeaderTimeout = absl::Seconds(8);

  HttpServerOptions HttpOptions() override {
    HttpServerOptions o = HttpServerTest::HttpOptions();
    o.header_timeout = kHeaderTimeout;
    return o;
  }

  // Latencies (ms) of `n` /health requests on new connections and `n` small completions.
  std::vector<double> Measure(int n, int* failures) {
    std::vector<double> ms;
    for (int i = 0; i < n; ++i) {
      httplib::Client fresh("127.0.0.1", http_port_);
      fresh.set_connection_timeout(std::chrono::seconds(5));
      fresh.set_read_timeout(std::chrono::seconds(5));
      absl::Time start = absl::Now();
      auto h = fresh.Get("/health");
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      if (!h || h->status != 200) ++*failures;
      start = absl::Now();
      auto c = Post("/v1/completions", R"({"prompt":"Hi","max_tokens":2})");
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      if (!c || c->status != 200) ++*failures;
    }
    return ms;
  }
};

TEST_F(HttpSlowClientsTest, ThousandSlowAndIdleConnectionsDoNotStarveRequests) {
  constexpr int kSlow = 500;
  constexpr int kIdle = 500;
  int have = 0;
  if (!EnsureDescriptors(kSlow + kIdle + 512, &have)) {
    GTEST_SKIP() << "needs " << kSlow + kIdle + 512 << " file descriptors; RLIMIT_NOFILE allows "
                 << have;
  }
  ASSERT_GE(http_->max_connections(), kSlow + kIdle + 50);
  StartWorkers(1);
  int failures = 0;
  const std::vector<double> unloaded = Measure(10, &failures);
  ASSERT_EQ(failures, 0);

  std::vector<int> slow, idle;
  const absl::Time opened = absl::Now();
  for (int i = 0; i < kSlow; ++i) {
    const int fd = Connect();
    ASSERT_GE(fd, 0) << "connection " << i;
    ASSERT_TRUE(SendAll(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"));
    slow.push_back(fd);
  }
  for (int i = 0; i < kIdle; ++i) {
    const int fd = Connect();
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  // One more header line into every slow connection each second: a per-read timeout would
  // never expire.
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
  ASSERT_TRUE(Eventually([&] { return http_->open_connections() >= kSlow + kIdle; }))
      << http_->open_connections() << " open";

  const std::vector<double> loaded = Measure(10, &failures);
  const int still_open = http_->open_connections();
  const absl::Duration measured_by = absl::Now() - opened;
  EXPECT_EQ(failures, 0);
  std::cerr << "unloaded p50 " << Percentile(unloaded, 0.5) << " ms, p99 "
            << Percentile(unloaded, 0.99) << " ms; with " << still_open
            << " slow/idle connections open: p50 " << Percentile(loaded, 0.5) << " ms, p99 "
            << Percentile(loaded, 0.99) << " ms\n";
  ASSERT_LT(measured_by, kHeaderTimeout) << "too slow to measure while they were all open";
  EXPECT_GE(still_open, kSlow + kIdle);
  EXPECT_LT(Percentile(loaded, 0.99), 2000.0);

  // The head deadline counts from the connection, not from the last byte.
  const std::vector<absl::Time> slow_closed = WaitClosed(slow, opened + kHeaderTimeout +
                                                                   absl::Seconds(10));
  const std::vector<absl::Time> idle_closed = WaitClosed(idle, opened + kHeaderTimeout +
                                                                   absl::Seconds(10));
  stop = true;
  trickle.join();
  for (const auto* closed : {&slow_closed, &idle_closed}) {
    for (size_t i = 0; i < closed->size(); ++i) {
      ASSERT_NE((*closed)[i], absl::InfiniteFuture()) << "connection " << i << " still open";
      EXPECT_GE((*closed)[i] - opened, kHeaderTimeout - absl::Milliseconds(500));
      EXPECT_LE((*closed)[i] - opened, kHeaderTimeout + absl::Seconds(6));
    }
  }
  for (int fd : slow) close(fd);
  for (int fd : idle) close(fd);
  EXPECT_TRUE(Eventually([&] { return http_->open_connections() <= 1; }));
  // And the API is still there.
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

class HttpConnectionCapTest : public ::g4::testing::HttpServerTest {
 protected:
  static constexpr int kCap = 16;
  HttpServerOptions HttpOptions() override {
    HttpServerOptions o = HttpServerTest::HttpOptions();
    o.max_connections = kCap;
    // Long enough that no deadline closes a test connection on a loaded machine: only the cap
    // should.
    o.header_timeout = absl::Minutes(2);
    return o;
  }
};

TEST_F(HttpConnectionCapTest, BusyConnectionsOverTheCapAreRefusedAtOnce) {
  StartWorkers(1);
  ASSERT_EQ(http_->max_connections(), kCap);
  std::vector<int> busy;
  for (int i = 0; i < kCap; ++i) {
    const int fd = Connect();
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "GET /health HTTP/1.1\r\n"));  // a head in progress: not idle
    busy.push_back(fd);
  }
  ASSERT_TRUE(Eventually([&] { return http_->open_connections() == kCap; }));
  const absl::Time start = absl::Now();
  const int over = Connect();
  ASSERT_GE(over, 0);
  const std::string got = ReadUntilClosed(over, absl::Seconds(5));
  const absl::Duration took = absl::Now() - start;
  close(over);
  EXPECT_THAT(got, StartsWith("HTTP/1.1 503"));
  EXPECT_THAT(got, HasSubstr("Retry-After: 1"));
  EXPECT_THAT(got, HasSubstr("connections are open"));
  EXPECT_LT(took, absl::Seconds(2));
  // A busy connection finishes its request; the server has room again.
  ASSERT_TRUE(SendAll(busy[0], "Host: x\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(ReadUntilClosed(busy[0]), StartsWith("HTTP/1.1 200"));
  close(busy[0]);
  ASSERT_TRUE(Eventually([&] { return http_->open_connections() < kCap; }));
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  for (size_t i = 1; i < busy.size(); ++i) close(busy[i]);
}

TEST_F(HttpConnectionCapTest, IdleConnectionsAreShedForNewOnes) {
  StartWorkers(1);
  std::vector<int> idle;
  for (int i = 0; i < kCap; ++i) {
    const int fd = Connect();
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
    // Accepted in order, so that idle[0] is the longest idle.
    ASSERT_TRUE(Eventually([&] { return http_->open_connections() == i + 1; }));
  }
  auto r = client_->Get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const std::vector<absl::Time> closed = WaitClosed({idle[0]}, absl::Now() + absl::Seconds(5));
  EXPECT_NE(closed[0], absl::InfiniteFuture()) << "the longest-idle connection was not shed";
  // Only that one.
  const std::vector<int> others(idle.begin() + 1, idle.end());
  for (absl::Time t : WaitClosed(others, absl::Now() + absl::Milliseconds(300))) {
    EXPECT_EQ(t, absl::InfiniteFuture());
  }
  for (int fd : idle) close(fd);
}

}  // namespace
}  // namespace g4
