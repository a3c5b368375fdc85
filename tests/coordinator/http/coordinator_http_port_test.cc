// g4-coordinator refuses to share its HTTP port: a second server on a taken --http-port exits 1
// with one stderr line (no SO_REUSEPORT, which would split new connections between the two).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_binary.h"

namespace g4 {
namespace {

using ::testing::HasSubstr;

TEST(CoordinatorHttpPortTest, TakenHttpPortExitsOneWithOneLine) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // The holder allows sharing (as a server with SO_REUSEPORT would): only a coordinator that
  // sets SO_REUSEPORT too could bind, and it must not.
  const int one = 1;
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), 0);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);

  const testing::RunResult r =
      testing::RunBinary(G4_COORDINATOR_BIN, absl::StrCat("--model tests/data/golden/dense "
                                                          "--port 0 --http-port ", port));
  close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("127.0.0.1:", port, " (HTTP)")));
  EXPECT_THAT(r.err, HasSubstr("in use"));
}

}  // namespace
}  // namespace g4
