#include "http/address_policy.h"

#include <arpa/inet.h>

#include <cstring>

namespace pgstream {

namespace {

bool prefix_matches(const unsigned char* address, const unsigned char* network, int prefix_length) {
    int whole = prefix_length / 8;
    if (std::memcmp(address, network, size_t(whole)) != 0) return false;
    int rest = prefix_length % 8;
    if (rest == 0) return true;
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
    return (address[whole] & mask) == (network[whole] & mask);
}

struct SpecialRange {
    const char* cidr;
    const char* kind;
};

// IANA special-purpose registries (RFC 6890 and successors), the ranges a request must not reach by default.
const SpecialRange kSpecialRanges[] = {
    {"0.0.0.0/8", "unspecified"},
    {"10.0.0.0/8", "private"},
    {"100.64.0.0/10", "shared (CGNAT)"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"172.16.0.0/12", "private"},
    {"192.0.0.0/24", "reserved"},
    {"192.0.2.0/24", "documentation"},
    {"192.168.0.0/16", "private"},
    {"198.18.0.0/15", "benchmarking"},
    {"198.51.100.0/24", "documentation"},
    {"203.0.113.0/24", "documentation"},
    {"224.0.0.0/4", "multicast"},
    {"240.0.0.0/4", "reserved"},
    {"::/128", "unspecified"},
    {"::1/128", "loopback"},
    {"fc00::/7", "private"},
    {"fe80::/10", "link-local"},
    {"ff00::/8", "multicast"},
    {"2001:db8::/32", "documentation"},
    {"64:ff9b:1::/48", "private"},
};

// An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is checked as the IPv4 address it carries.
bool unmap_ipv4(const sockaddr* address, sockaddr_in& ipv4) {
    if (address->sa_family != AF_INET6) return false;
    const auto* ipv6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (!IN6_IS_ADDR_V4MAPPED(&ipv6->sin6_addr)) return false;
    ipv4 = sockaddr_in{};
    ipv4.sin_family = AF_INET;
    std::memcpy(&ipv4.sin_addr, ipv6->sin6_addr.s6_addr + 12, 4);
    return true;
}

}  // namespace

std::optional<Network> Network::parse(const std::string& cidr) {
    Network network;
    std::string address = cidr;
    int max_prefix;
    size_t slash = cidr.find('/');
    if (slash != std::string::npos) address = cidr.substr(0, slash);
    if (inet_pton(AF_INET, address.c_str(), network.bytes) == 1) {
        network.family = AF_INET;
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, address.c_str(), network.bytes) == 1) {
        network.family = AF_INET6;
        max_prefix = 128;
    } else {
        return std::nullopt;
    }
    network.prefix_length = max_prefix;
    if (slash != std::string::npos) {
        std::string prefix = cidr.substr(slash + 1);
        if (prefix.empty() || prefix.size() > 3 ||
            prefix.find_first_not_of("0123456789") != std::string::npos)
            return std::nullopt;
        network.prefix_length = std::stoi(prefix);
        if (network.prefix_length > max_prefix) return std::nullopt;
    }
    return network;
}

bool Network::contains(const sockaddr* address) const {
    sockaddr_in unmapped;
    if (unmap_ipv4(address, unmapped)) address = reinterpret_cast<const sockaddr*>(&unmapped);
    if (address->sa_family != family) return false;
    if (family == AF_INET) {
        const auto* ipv4 = reinterpret_cast<const sockaddr_in*>(address);
        return prefix_matches(reinterpret_cast<const unsigned char*>(&ipv4->sin_addr), bytes, prefix_length);
    }
    const auto* ipv6 = reinterpret_cast<const sockaddr_in6*>(address);
    return prefix_matches(ipv6->sin6_addr.s6_addr, bytes, prefix_length);
}

std::string special_purpose_kind(const sockaddr* address) {
    static const std::vector<std::pair<Network, std::string>> ranges = [] {
        std::vector<std::pair<Network, std::string>> parsed;
        for (const auto& range : kSpecialRanges) parsed.emplace_back(*Network::parse(range.cidr), range.kind);
        return parsed;
    }();
    if (address->sa_family != AF_INET && address->sa_family != AF_INET6) return "non-IP";
    for (const auto& [network, kind] : ranges)
        if (network.contains(address)) return kind;
    return {};
}

AddressPolicy AddressPolicy::allow_all() {
    AddressPolicy policy;
    policy.allow_all_ = true;
    return policy;
}

std::string AddressPolicy::refusal(const sockaddr* address) const {
    if (allow_all_) return {};
    std::string kind = special_purpose_kind(address);
    if (kind.empty()) return {};
    for (const auto& network : allowed_)
        if (network.contains(address)) return {};
    return kind;
}

}  // namespace pgstream
