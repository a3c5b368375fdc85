// g4-link-emulator IF_A IF_B [--delay-ms N] [--loss P] [--seed S]: a userspace stand-in for
// `tc qdisc ... netem delay N loss P`, for kernels built without sch_netem (the chaos tests,
// docs/resilience.md). It forwards every Ethernet frame between two interfaces of one network
// namespace, in both directions, each one N ms after it arrived (order kept), dropping each with
// probability P. Used in place of a bridge port: TCP above it sees a link with that delay and
// loss (retransmissions included), as with netem.
//
// Frames are read and written with PACKET_VNET_HDR, so segmentation- and checksum-offloaded
// frames from veth links pass through intact. Runs until SIGTERM / SIGINT.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/flags/flag_set.h"

namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "g4-link-emulator: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

// A raw socket on `iface` that sees every frame (promiscuous) with its virtio-net header.
int OpenRaw(const char* iface) {
  const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
  if (fd < 0) Die("socket");
  const int on = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &on, sizeof(on)) != 0) {
    Die("PACKET_VNET_HDR");
  }
  const unsigned index = if_nametoindex(iface);
  if (index == 0) Die(std::string("no interface ") + iface);
  sockaddr_ll addr = {};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(index);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Die("bind");
  packet_mreq mreq = {};
  mreq.mr_ifindex = static_cast<int>(index);
  mreq.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) != 0) {
    Die("PACKET_MR_PROMISC");
  }
  return fd;
}

struct Frame {
  Clock::time_point due;
  std::vector<char> bytes;
};

// The flags (common/flags): `g4-link-emulator --help` prints them.
struct Options {
  std::string if_a, if_b;
  double delay_ms = 0;
  double loss = 0;
  uint64_t seed = 1;
};

void DeclareFlags(g4::FlagSet& flags, Options& o) {
  flags.AddPositional("IF_A", &o.if_a, "one interface of the link");
  flags.AddPositional("IF_B", &o.if_b, "the other interface");
  flags.Add("delay-ms", &o.delay_ms, "each frame leaves this many ms after it arrived")
      .Value("N")
      .RealRange(0, 1e7);
  flags.Add("loss", &o.loss, "each frame is dropped with this probability")
      .Value("P")
      .RealRange(0, 1);
  flags.Add("seed", &o.seed, "random seed of the drops").Value("S");
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  g4::FlagSet flags("g4-link-emulator", "IF_A IF_B [--delay-ms N] [--loss P] [--seed S]",
                    "A userspace stand-in for `tc qdisc ... netem delay N loss P`: forwards every "
                    "Ethernet frame between two interfaces, both ways, delayed and dropped. Runs "
                    "until SIGTERM / SIGINT.");
  DeclareFlags(flags, o);
  if (absl::Status s = flags.Parse(argc, argv); !s.ok()) {
    return g4::FlagError("g4-link-emulator", s);
  }
  if (flags.help()) return g4::PrintUsage(flags.Usage());
  const double delay_ms = o.delay_ms, loss = o.loss;
  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  const int fds[2] = {OpenRaw(o.if_a.c_str()), OpenRaw(o.if_b.c_str())};
  const auto delay = std::chrono::microseconds(static_cast<int64_t>(delay_ms * 1000));
  std::mt19937 rng(static_cast<std::mt19937::result_type>(o.seed));
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::deque<Frame> queues[2];  // queues[i]: frames read on fds[i], to write on fds[1 - i]
  std::vector<char> buffer(1 << 17);
  std::fprintf(stderr, "g4-link-emulator: %s <-> %s, delay %.1f ms, loss %.3f\n",
               o.if_a.c_str(), o.if_b.c_str(), delay_ms, loss);
  while (!g_stop) {
    int timeout_ms = 50;
    const Clock::time_point now = Clock::now();
    for (const auto& q : queues) {
      if (q.empty()) continue;
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(q.front().due - now);
      timeout_ms = std::max(0, std::min<int>(timeout_ms, static_cast<int>(wait.count())));
    }
    pollfd pfds[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    if (poll(pfds, 2, timeout_ms) < 0 && errno != EINTR) Die("poll");
    for (int i = 0; i < 2; ++i) {
      if (!(pfds[i].revents & POLLIN)) continue;
      sockaddr_ll from = {};
      socklen_t len = sizeof(from);
      const ssize_t n = recvfrom(fds[i], buffer.data(), buffer.size(), MSG_DONTWAIT,
                                 reinterpret_cast<sockaddr*>(&from), &len);
      if (n <= 0) continue;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own writes
      if (loss > 0 && uniform(rng) < loss) continue;
      queues[i].push_back(Frame{Clock::now() + delay, std::vector<char>(buffer.begin(),
                                                                         buffer.begin() + n)});
    }
    const Clock::time_point after = Clock::now();
    for (int i = 0; i < 2; ++i) {
      while (!queues[i].empty() && queues[i].front().due <= after) {
        const Frame& f = queues[i].front();
        // A full queue on the way out drops the frame, as a congested link would.
        (void)send(fds[1 - i], f.bytes.data(), f.bytes.size(), MSG_DONTWAIT);
        queues[i].pop_front();
      }
    }
  }
  close(fds[0]);
  close(fds[1]);
  return 0;
}
