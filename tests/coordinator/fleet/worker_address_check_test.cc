#include "coordinator/fleet/worker_address_check.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

TEST(PeerIpTest, ReadsGrpcPeerStrings) {
  EXPECT_EQ(PeerIp("ipv4:10.0.0.7:5123").value(), "10.0.0.7");
  EXPECT_EQ(PeerIp("ipv6:[::1]:5123").value(), "::1");
  EXPECT_EQ(PeerIp("ipv6:%5B::1%5D:5123").value(), "::1");
  EXPECT_EQ(PeerIp("ipv6:[fe80:0:0::1]:1").value(), "fe80::1");  // normalized
  // A dual-stack listener sees IPv4 clients as IPv4-mapped IPv6 addresses.
  EXPECT_EQ(PeerIp("ipv6:[::ffff:10.1.2.3]:5123").value(), "10.1.2.3");
  EXPECT_EQ(PeerIp("unix:/tmp/sock").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerIp("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PeerIp("ipv4:not-an-ip:1").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AddressHostTest, SplitsHostAndPort) {
  EXPECT_EQ(AddressHost("10.0.0.7:50061").value(), "10.0.0.7");
  EXPECT_EQ(AddressHost("worker-0.g4:50061").value(), "worker-0.g4");
  EXPECT_EQ(AddressHost("[fd00::7]:50061").value(), "fd00::7");
  for (const char* bad : {"10.0.0.7", ":50061", "fd00::7:1", "[fd00::7]", "[fd00::7"}) {
    EXPECT_EQ(AddressHost(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(CheckAddressIsPeerTest, SameHostPasses) {
  EXPECT_TRUE(CheckAddressIsPeer("10.0.0.7:50061", "ipv4:10.0.0.7:40000").ok());
  EXPECT_TRUE(CheckAddressIsPeer("10.0.0.7:50061", "ipv6:[::ffff:10.0.0.7]:40000").ok());
  EXPECT_TRUE(CheckAddressIsPeer("[::1]:50061", "ipv6:%5B::1%5D:40000").ok());
  EXPECT_TRUE(CheckAddressIsPeer("localhost:50061", "ipv4:127.0.0.1:40000").ok());
}

TEST(CheckAddressIsPeerTest, AnotherHostIsPermissionDeniedNamingBoth) {
  absl::Status s = CheckAddressIsPeer("10.0.0.8:50061", "ipv4:10.0.0.7:40000");
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("10.0.0.8:50061"));
  EXPECT_THAT(s.message(), HasSubstr("came from 10.0.0.7"));
  EXPECT_THAT(s.message(), HasSubstr("--worker-address-check"));
  EXPECT_EQ(CheckAddressIsPeer("10.0.0.7:50061", "unix:/tmp/sock").code(),
            absl::StatusCode::kPermissionDenied);
  absl::Status unresolved = CheckAddressIsPeer("no-such-host.invalid:1", "ipv4:10.0.0.7:1");
  EXPECT_EQ(unresolved.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(unresolved.message(), HasSubstr("does not resolve"));
  EXPECT_EQ(CheckAddressIsPeer("10.0.0.7", "ipv4:10.0.0.7:1").code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace g4
