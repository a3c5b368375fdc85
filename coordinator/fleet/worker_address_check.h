// Binds a worker's registration to the connection it came on: the address a worker registers
// (and heartbeats with) must be one the call itself came from. Without it, anyone who may call
// Fleet.Register (with mutual TLS: any holder of the workers' certificate) could register
// another host's address and have the coordinator send users' requests there
// (docs/security.md, "Per-worker addresses").
//
// The check compares IP addresses: the host of HOST:PORT (an IP literal, or a name resolved
// with getaddrinfo: any of its addresses will do) against the IP in gRPC's peer string. It
// cannot tell two processes on one host apart, and it needs the coordinator to see the
// worker's own address (no NAT or proxy between them); --worker-address-check=off turns it off
// for such networks.
#ifndef G4SERVE_COORDINATOR_FLEET_WORKER_ADDRESS_CHECK_H_
#define G4SERVE_COORDINATOR_FLEET_WORKER_ADDRESS_CHECK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace g4 {

// The IP address in a gRPC peer string, normalized (inet_ntop; an IPv4-mapped IPv6 address as
// IPv4): "ipv4:10.0.0.7:5123" -> "10.0.0.7", "ipv6:[::1]:5123" and "ipv6:%5B::1%5D:5123" ->
// "::1". INVALID_ARGUMENT for any other kind of peer ("unix:...").
absl::StatusOr<std::string> PeerIp(absl::string_view grpc_peer);

// The host of HOST:PORT or [V6]:PORT. INVALID_ARGUMENT when there is no ":PORT".
absl::StatusOr<std::string> AddressHost(absl::string_view address);

// OK when the host of `address` is `grpc_peer`'s IP or resolves to it. PERMISSION_DENIED naming
// both otherwise; INVALID_ARGUMENT for an address without a port.
absl::Status CheckAddressIsPeer(absl::string_view address, absl::string_view grpc_peer);

}  // namespace g4

#endif  // G4SERVE_COORDINATOR_FLEET_WORKER_ADDRESS_CHECK_H_
