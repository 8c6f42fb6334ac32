// pg::connect against a server that accepts the TCP connection and then never answers (a hung server, a stuck
// proxy): it must give up instead of waiting forever.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "util/pg.h"

namespace pgstream {
namespace {

// A listening socket nobody accepts on: the kernel completes the handshake, no byte ever comes back.
class SilentServer {
  public:
    SilentServer() {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        EXPECT_EQ(listen(fd_, 16), 0);
        socklen_t length = sizeof address;
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~SilentServer() { close(fd_); }
    std::string url(const std::string& options = "") const {
        return "postgresql://pgstream@127.0.0.1:" + std::to_string(port_) + "/postgres" + options;
    }

  private:
    int fd_ = -1;
    int port_ = 0;
};

double seconds_to_fail(const std::string& url) {
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(pg::connect(url), pg::Error);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(PgConnect, GivesUpOnAServerThatNeverAnswers) {
    unsetenv("PGCONNECT_TIMEOUT");
    SilentServer server;
    double waited = seconds_to_fail(server.url());
    double limit = std::atof(pg::kDefaultConnectTimeoutSeconds);
    EXPECT_GE(waited, limit - 1);
    EXPECT_LT(waited, limit + 5) << "the default connect timeout applies";
}

TEST(PgConnect, TheUrlsOwnConnectTimeoutWins) {
    SilentServer server;
    double waited = seconds_to_fail(server.url("?connect_timeout=2"));
    EXPECT_GE(waited, 1.5);
    EXPECT_LT(waited, 5.0);
}

}  // namespace
}  // namespace pgstream
