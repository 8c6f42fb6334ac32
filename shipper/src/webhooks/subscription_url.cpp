#include "webhooks/subscription_url.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <memory>

namespace pgstream::webhooks {

namespace {

constexpr size_t kMaxUrlLength = 2048;

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

std::string numeric_host(const sockaddr* address) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* bytes =
        address->sa_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
    inet_ntop(address->sa_family, bytes, text, sizeof text);
    return text;
}

}  // namespace

std::string parse_webhook_url(const std::string& url, WebhookUrl& parsed) {
    if (url.empty()) return "url is empty";
    if (url.size() > kMaxUrlLength) return "url is longer than 2048 characters";
    for (unsigned char c : url)
        if (c <= 0x20 || c == 0x7f) return "url contains spaces or control characters";
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return "url is not absolute (expected http:// or https://)";
    parsed.scheme = lower(url.substr(0, scheme_end));
    if (parsed.scheme != "http" && parsed.scheme != "https") return "url scheme must be http or https";
    size_t authority_start = scheme_end + 3;
    size_t authority_end = url.find_first_of("/?#", authority_start);
    std::string authority = url.substr(authority_start, authority_end - authority_start);
    if (authority.find('@') != std::string::npos)
        return "url must not carry credentials (user:password@); sign deliveries with a secret instead";
    std::string port;
    if (!authority.empty() && authority.front() == '[') {
        size_t close = authority.find(']');
        if (close == std::string::npos) return "url has an unterminated [IPv6] host";
        parsed.host = authority.substr(1, close - 1);
        std::string rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return "url has text after its [IPv6] host";
            port = rest.substr(1);
        }
    } else {
        size_t colon = authority.rfind(':');
        parsed.host = authority.substr(0, colon);
        if (colon != std::string::npos) port = authority.substr(colon + 1);
    }
    if (parsed.host.empty()) return "url has no host";
    if (authority.find(':') != std::string::npos && authority.front() != '[' &&
        parsed.host.find(':') != std::string::npos)
        return "url has an IPv6 host without brackets";
    if (port.empty()) {
        if (authority.back() == ':') return "url has an empty port";
        port = parsed.scheme == "https" ? "443" : "80";
    }
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) == 0 || std::stoi(port) > 65535)
        return "url port must be a number from 1 to 65535";
    parsed.port = port;
    return {};
}

std::string webhook_url_refusal(const std::string& url, const AddressPolicy& policy) {
    WebhookUrl parsed;
    if (std::string why = parse_webhook_url(url, parsed); !why.empty()) return why;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int error = getaddrinfo(parsed.host.c_str(), parsed.port.c_str(), &hints, &found);
    if (error != 0) return "url host \"" + parsed.host + "\" does not resolve (" + gai_strerror(error) + ")";
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
    for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next) {
        std::string kind = policy.refusal(entry->ai_addr);
        if (!kind.empty())
            return "url host \"" + parsed.host + "\" resolves to " + numeric_host(entry->ai_addr) + ", a " +
                   kind +
                   " address; allow its network with PGSTREAM_WEBHOOK_ALLOWED_NETWORKS to subscribe it";
    }
    return {};
}

}  // namespace pgstream::webhooks
