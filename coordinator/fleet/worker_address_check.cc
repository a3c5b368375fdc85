#include "coordinator/fleet/worker_address_check.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace g4 {
namespace {

// An IP address in binary form, IPv4-mapped IPv6 folded to IPv4, so that equal addresses
// compare equal whatever their spelling.
struct Ip {
  int family = AF_UNSPEC;
  unsigned char bytes[16] = {};

  bool operator==(const Ip& o) const {
    return family == o.family && std::memcmp(bytes, o.bytes, family == AF_INET ? 4 : 16) == 0;
  }
  std::string ToString() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, bytes, text, sizeof text);
    return text;
  }
};

Ip FoldMapped(const Ip& ip) {
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (ip.family != AF_INET6 || std::memcmp(ip.bytes, kMapped, 12) != 0) return ip;
  Ip v4;
  v4.family = AF_INET;
  std::memcpy(v4.bytes, ip.bytes + 12, 4);
  return v4;
}

bool ParseIp(const std::string& text, Ip* ip) {
  Ip parsed;
  if (inet_pton(AF_INET, text.c_str(), parsed.bytes) == 1) {
    parsed.family = AF_INET;
  } else if (inet_pton(AF_INET6, text.c_str(), parsed.bytes) == 1) {
    parsed.family = AF_INET6;
  } else {
    return false;
  }
  *ip = FoldMapped(parsed);
  return true;
}

// `host` as an IP literal, else every address it resolves to (empty when it does not).
std::vector<Ip> Resolve(const std::string& host) {
  Ip literal;
  if (ParseIp(host, &literal)) return {literal};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return {};
  std::vector<Ip> ips;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    Ip ip;
    ip.family = a->ai_family;
    if (a->ai_family == AF_INET) {
      std::memcpy(ip.bytes, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, 4);
    } else if (a->ai_family == AF_INET6) {
      std::memcpy(ip.bytes, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    ips.push_back(FoldMapped(ip));
  }
  freeaddrinfo(found);
  return ips;
}

}  // namespace

absl::StatusOr<std::string> PeerIp(absl::string_view grpc_peer) {
  // gRPC writes "ipv4:A.B.C.D:PORT" and "ipv6:[V6]:PORT", newer releases with the brackets
  // percent-encoded.
  std::string peer = absl::StrReplaceAll(grpc_peer, {{"%5B", "["}, {"%5D", "]"}});
  absl::string_view rest = peer;
  if (!absl::ConsumePrefix(&rest, "ipv4:") && !absl::ConsumePrefix(&rest, "ipv6:")) {
    return absl::InvalidArgumentError(absl::StrCat("peer \"", grpc_peer, "\" is not an IP peer"));
  }
  absl::StatusOr<std::string> host = AddressHost(rest);
  Ip ip;
  if (!host.ok() || !ParseIp(*host, &ip)) {
    return absl::InvalidArgumentError(absl::StrCat("peer \"", grpc_peer, "\" has no IP address"));
  }
  return ip.ToString();
}

absl::StatusOr<std::string> AddressHost(absl::string_view address) {
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("address \"", address, "\": expected [IPV6]:PORT"));
    }
    return std::string(address.substr(1, close - 1));
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0 ||
      address.substr(0, colon).find(':') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", address, "\": expected HOST:PORT"));
  }
  return std::string(address.substr(0, colon));
}

absl::Status CheckAddressIsPeer(absl::string_view address, absl::string_view grpc_peer) {
  absl::StatusOr<std::string> host = AddressHost(address);
  if (!host.ok()) return host.status();
  absl::StatusOr<std::string> peer_text = PeerIp(grpc_peer);
  Ip peer;
  if (!peer_text.ok() || !ParseIp(*peer_text, &peer)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "address ", address, ": the call came from ", grpc_peer,
        ", not from an IP address it could be checked against (--worker-address-check)"));
  }
  const std::vector<Ip> ips = Resolve(*host);
  if (ips.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "address ", address, ": ", *host, " does not resolve, so it cannot be checked against ",
        "the call's peer ", peer.ToString(), " (--worker-address-check, docs/security.md)"));
  }
  for (const Ip& ip : ips) {
    if (ip == peer) return absl::OkStatus();
  }
  return absl::PermissionDeniedError(
      absl::StrCat("address ", address, ": the call came from ", peer.ToString(),
                   ", which is not that host; a worker registers its own address "
                   "(--worker-address-check, docs/security.md)"));
}

}  // namespace g4
