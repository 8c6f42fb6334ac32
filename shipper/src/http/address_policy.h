// Which network addresses outgoing requests may reach. Anything that fetches a URL a user (or a subscriber)
// chose refuses loopback, link-local (cloud metadata at 169.254.169.254), private, shared (CGNAT), multicast,
// reserved and unspecified addresses unless the operator allowed those networks. The HTTP client checks the
// address it is about to connect to, after DNS resolution, so a name that resolves to a private address
// (DNS rebinding) is refused as well.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

namespace pgstream {

struct Network {
    int family = AF_INET;       // AF_INET or AF_INET6
    unsigned char bytes[16]{};  // network address, first 4 bytes for IPv4
    int prefix_length = 0;
    bool contains(const sockaddr* address) const;
    // "10.0.0.0/8", "::1/128", "192.168.1.7" (a host); std::nullopt when malformed.
    static std::optional<Network> parse(const std::string& cidr);
};

class AddressPolicy {
  public:
    // Only public addresses, plus `allowed` networks.
    AddressPolicy() = default;
    explicit AddressPolicy(std::vector<Network> allowed) : allowed_(std::move(allowed)) {}
    // Every address is allowed (tests against local servers, or an operator who said so).
    static AddressPolicy allow_all();

    // Empty when `address` may be connected to, else what kind of address it is ("loopback", ...).
    std::string refusal(const sockaddr* address) const;

  private:
    std::vector<Network> allowed_;
    bool allow_all_ = false;
};

// "loopback", "private", "link-local", ... for a non-public address; empty for a public one.
std::string special_purpose_kind(const sockaddr* address);

}  // namespace pgstream
