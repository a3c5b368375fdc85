// A private network for chaos tests: every host is a Linux network namespace linked by a veth
// pair to a bridge that lives in a namespace of its own (the "switch"). Hosts get addresses in
// 10.77.0.0/24 and reach only each other: nothing is routed anywhere else, and the root
// namespace is not touched. Optional direct links between two hosts (their own subnet,
// interface "g4p<other host>") carry a replica's collectives apart from the coordinator's
// traffic. Faults: a host's link down / up (as a cut cable), a link between two hosts down /
// up, and delay + loss on a host's link — with `tc netem` when the kernel has it, otherwise
// with g4-link-emulator (a userspace frame forwarder that delays and drops) spliced into the
// host's switch port. Everything is removed by the destructor (and by the next lab of any test
// run, if a crashed run left namespaces behind). Needs root and iproute2; Create() says why not
// otherwise, for the test to skip.
#ifndef G4SERVE_TESTS_INTEGRATION_NETWORK_LAB_H_
#define G4SERVE_TESTS_INTEGRATION_NETWORK_LAB_H_

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/integration/process.h"

namespace g4::testing {

class NetworkLab {
 public:
  // Builds the switch and one namespace per host. UNAVAILABLE (with the reason) when namespaces
  // cannot be made here: not root, no `ip`, no veth or bridge support.
  static absl::StatusOr<std::unique_ptr<NetworkLab>> Create(const std::vector<std::string>& hosts) {
    if (geteuid() != 0) return absl::UnavailableError("network namespaces need root");
    std::string ip;
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
      if (access(p, X_OK) == 0) {
        ip = p;
        break;
      }
    }
    if (ip.empty()) return absl::UnavailableError("iproute2 (`ip`) is not installed");
    RemoveStaleLabs(ip);
    std::unique_ptr<NetworkLab> lab(new NetworkLab(ip, absl::StrCat("g4chaos", getpid(), "x",
                                                                    next_lab_++)));
    if (absl::Status s = lab->Build(hosts); !s.ok()) {
      return absl::UnavailableError(
          absl::StrCat("cannot build network namespaces here: ", s.message()));
    }
    return lab;
  }

  ~NetworkLab() {
    for (auto& [host, relay] : relays_) relay->Kill(SIGKILL);
    for (const std::string& ns : namespaces_) Run(absl::StrCat(ip_, " netns del ", ns));
  }

  const std::string& ip() const { return ip_; }
  std::string Namespace(const std::string& host) const { return absl::StrCat(prefix_, host); }
  std::string Address(const std::string& host) const { return addresses_.at(host); }
  // The address of `host` on its direct link to `peer` (AddPeerLink).
  std::string PeerAddress(const std::string& host, const std::string& peer) const {
    return peer_addresses_.at(host + ">" + peer);
  }
  static std::string PeerInterface(const std::string& peer) { return "g4p" + peer; }

  // argv that runs `argv` inside `host`.
  std::vector<std::string> Exec(const std::string& host, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {ip_, "netns", "exec", Namespace(host)});
    return argv;
  }

  // Runs `fn` on a thread that has entered `host`'s namespace (its sockets are the host's), and
  // waits for it.
  absl::Status RunIn(const std::string& host, const std::function<void()>& fn) const {
    absl::Status status;
    std::thread t([&] {
      const int fd = open(absl::StrCat("/run/netns/", Namespace(host)).c_str(), O_RDONLY);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        status = absl::InternalError(absl::StrCat("setns into ", Namespace(host), " failed"));
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
      fn();
    });
    t.join();
    return status;
  }

  // A direct link between two hosts (10.78.<n>.1 and .2), interface PeerInterface(other).
  absl::Status AddPeerLink(const std::string& a, const std::string& b) {
    const int n = ++peer_links_;
    const std::string ia = PeerInterface(b), ib = PeerInterface(a);
    const std::string aa = absl::StrCat("10.78.", n, ".1"), ab = absl::StrCat("10.78.", n, ".2");
    for (const std::string& cmd :
         {absl::StrCat(ip_, " link add ", ia, " netns ", Namespace(a), " type veth peer name ",
                       ib, " netns ", Namespace(b)),
          absl::StrCat(ip_, " -n ", Namespace(a), " addr add ", aa, "/24 dev ", ia),
          absl::StrCat(ip_, " -n ", Namespace(b), " addr add ", ab, "/24 dev ", ib),
          absl::StrCat(ip_, " -n ", Namespace(a), " link set ", ia, " up"),
          absl::StrCat(ip_, " -n ", Namespace(b), " link set ", ib, " up")}) {
      if (absl::Status s = Run(cmd); !s.ok()) return s;
    }
    peer_addresses_[a + ">" + b] = aa;
    peer_addresses_[b + ">" + a] = ab;
    return absl::OkStatus();
  }

  // The host's link to the switch up or down (a cut cable: both directions).
  absl::Status SetLink(const std::string& host, bool up) {
    return Run(absl::StrCat(ip_, " -n ", Namespace("sw"), " link set ", Port(host),
                            up ? " up" : " down"));
  }
  // The direct link between a and b up or down (a's end).
  absl::Status SetPeerLink(const std::string& a, const std::string& b, bool up) {
    return Run(absl::StrCat(ip_, " -n ", Namespace(a), " link set ", PeerInterface(b),
                            up ? " up" : " down"));
  }

  // Whether this kernel has the netem qdisc (tried on a scratch veth in the switch).
  bool HasNetem() {
    if (!has_netem_.has_value()) {
      const std::string sw = Namespace("sw");
      Run(absl::StrCat(ip_, " -n ", sw, " link add g4nt0 type veth peer name g4nt1"));
      has_netem_ = Run(absl::StrCat("tc -n ", sw, " qdisc add dev g4nt0 root netem delay 1ms"))
                       .ok();
      Run(absl::StrCat(ip_, " -n ", sw, " link del g4nt0"));
    }
    return *has_netem_;
  }

  // Every frame to and from `host` is delayed by `delay_ms` and dropped with probability
  // `loss`, in each direction: netem on both ends of its switch port when the kernel has it,
  // else g4-link-emulator (`emulator`: its path) between the port and the bridge.
  absl::Status Impair(const std::string& host, double delay_ms, double loss,
                      const std::string& emulator) {
    const std::string sw = Namespace("sw"), port = Port(host);
    if (HasNetem()) {
      const std::string netem = absl::StrCat(" root netem delay ", delay_ms, "ms loss ",
                                             loss * 100, "%");
      if (absl::Status s = Run(absl::StrCat("tc -n ", sw, " qdisc add dev ", port, netem));
          !s.ok()) {
        return s;
      }
      return Run(absl::StrCat("tc -n ", Namespace(host), " qdisc add dev eth0", netem));
    }
    // port <-> [emulator] <-> ea (veth) <-> eb (bridge port)
    const std::string ea = absl::StrCat("e", port), eb = absl::StrCat("f", port);
    for (const std::string& cmd :
         {absl::StrCat(ip_, " -n ", sw, " link set ", port, " nomaster"),
          absl::StrCat(ip_, " -n ", sw, " link add ", ea, " type veth peer name ", eb),
          absl::StrCat(ip_, " -n ", sw, " link set ", eb, " master br0"),
          absl::StrCat(ip_, " -n ", sw, " link set ", ea, " up"),
          absl::StrCat(ip_, " -n ", sw, " link set ", eb, " up")}) {
      if (absl::Status s = Run(cmd); !s.ok()) return s;
    }
    auto relay = std::make_unique<Process>();
    if (!relay->Start(Exec("sw", {emulator, port, ea, "--delay-ms", absl::StrCat(delay_ms),
                                  "--loss", absl::StrCat(loss)}),
                      absl::StrCat("/tmp/", prefix_, "-emulator-", host, ".log"))) {
      return absl::InternalError("cannot start g4-link-emulator");
    }
    relays_[host] = std::move(relay);
    return absl::OkStatus();
  }

  // Undoes Impair(host).
  absl::Status Restore(const std::string& host) {
    const std::string sw = Namespace("sw"), port = Port(host);
    if (HasNetem()) {
      Run(absl::StrCat("tc -n ", Namespace(host), " qdisc del dev eth0 root"));
      return Run(absl::StrCat("tc -n ", sw, " qdisc del dev ", port, " root"));
    }
    if (auto it = relays_.find(host); it != relays_.end()) {
      it->second->Kill(SIGTERM);
      relays_.erase(it);
    }
    Run(absl::StrCat(ip_, " -n ", sw, " link del e", port));
    return Run(absl::StrCat(ip_, " -n ", sw, " link set ", port, " master br0"));
  }

  // Runs a shell command; its output goes into the error.
  static absl::Status Run(const std::string& command) {
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (p == nullptr) return absl::InternalError(absl::StrCat("popen: ", command));
    std::string out;
    char buf[512];
    while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
    const int rc = pclose(p);
    if (rc != 0) {
      return absl::InternalError(
          absl::StrCat("`", command, "` failed: ", absl::StripTrailingAsciiWhitespace(out)));
    }
    return absl::OkStatus();
  }

 private:
  NetworkLab(std::string ip, std::string prefix) : ip_(std::move(ip)), prefix_(std::move(prefix)) {}

  static std::string Port(const std::string& host) { return "p" + host; }

  absl::Status Build(const std::vector<std::string>& hosts) {
    const std::string sw = Namespace("sw");
    auto add_ns = [this](const std::string& ns) -> absl::Status {
      if (absl::Status s = Run(absl::StrCat(ip_, " netns add ", ns)); !s.ok()) return s;
      namespaces_.push_back(ns);
      return Run(absl::StrCat(ip_, " -n ", ns, " link set lo up"));
    };
    if (absl::Status s = add_ns(sw); !s.ok()) return s;
    if (absl::Status s = Run(absl::StrCat(ip_, " -n ", sw, " link add br0 type bridge")); !s.ok()) {
      return s;
    }
    if (absl::Status s = Run(absl::StrCat(ip_, " -n ", sw, " link set br0 up")); !s.ok()) return s;
    int n = 10;
    for (const std::string& host : hosts) {
      const std::string ns = Namespace(host), port = Port(host);
      const std::string address = absl::StrCat("10.77.0.", n++);
      if (absl::Status s = add_ns(ns); !s.ok()) return s;
      for (const std::string& cmd :
           {absl::StrCat(ip_, " link add eth0 netns ", ns, " type veth peer name ", port,
                         " netns ", sw),
            absl::StrCat(ip_, " -n ", ns, " addr add ", address, "/24 dev eth0"),
            absl::StrCat(ip_, " -n ", ns, " link set eth0 up"),
            absl::StrCat(ip_, " -n ", sw, " link set ", port, " master br0"),
            absl::StrCat(ip_, " -n ", sw, " link set ", port, " up")}) {
        if (absl::Status s = Run(cmd); !s.ok()) return s;
      }
      addresses_[host] = address;
    }
    return absl::OkStatus();
  }

  // Namespaces of labs whose test process is gone (a crash, a SIGKILLed test run).
  static void RemoveStaleLabs(const std::string& ip) {
    FILE* p = popen((ip + " netns list 2>/dev/null").c_str(), "r");
    if (p == nullptr) return;
    std::vector<std::string> stale;
    char buf[256];
    while (fgets(buf, sizeof(buf), p) != nullptr) {
      const std::string name(absl::StripTrailingAsciiWhitespace(
          std::vector<std::string>(absl::StrSplit(buf, ' '))[0]));
      if (name.rfind("g4chaos", 0) != 0) continue;
      const int pid = std::atoi(name.c_str() + 7);
      if (pid > 0 && pid != getpid() && kill(pid, 0) != 0) stale.push_back(name);
    }
    pclose(p);
    for (const std::string& ns : stale) Run(absl::StrCat(ip, " netns del ", ns));
  }

  static inline int next_lab_ = 0;
  const std::string ip_;
  const std::string prefix_;
  std::vector<std::string> namespaces_;
  std::map<std::string, std::string> addresses_;
  std::map<std::string, std::string> peer_addresses_;
  std::map<std::string, std::unique_ptr<Process>> relays_;
  std::optional<bool> has_netem_;
  int peer_links_ = 0;
};

}  // namespace g4::testing

#endif  // G4SERVE_TESTS_INTEGRATION_NETWORK_LAB_H_
