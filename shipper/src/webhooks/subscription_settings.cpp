#include "webhooks/subscription_settings.h"

#include <arpa/inet.h>

#include "config/config.h"
#include "observability/health_server.h"

namespace pgstream::webhooks {

std::vector<Setting> subscription_store_settings() {
    return {
        {kStoreUrlKey, "",
         "PostgreSQL URL of the database holding pgstream.webhook_subscriptions (required)"},
        {kCacheEnabledKey, "false",
         "keep the subscriptions in memory, refreshed on an interval (false: re-read for every batch)"},
        {kCacheRefreshIntervalKey, "60s",
         "how often the cached subscriptions are re-read (their maximum staleness)"},
    };
}

std::vector<Setting> subscription_server_settings() {
    return {
        {kServerAddressKey, ":9900",
         "host:port the subscription server listens on (\":port\" = every address)"},
        {kServerReadTimeoutKey, "5s", "longest time to read one request, body included"},
        {kServerWriteTimeoutKey, "10s", "longest time to write one response"},
        {kServerTokenKey, "", "bearer token every request must carry (Authorization: Bearer <token>)"},
        {kServerAllowUnauthenticatedKey, "false",
         "let the server listen on a non-loopback address without a token"},
        {kAllowedNetworksKey, "",
         "CIDR list of non-public networks webhook URLs may point to (e.g. 10.0.0.0/8,127.0.0.1/32)"},
    };
}

bool is_loopback_listen_host(const std::string& host) {
    if (host == "localhost") return true;
    sockaddr_storage address{};
    auto* ipv4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* ipv6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (inet_pton(AF_INET, host.c_str(), &ipv4->sin_addr) == 1) {
        address.ss_family = AF_INET;
    } else if (inet_pton(AF_INET6, host.c_str(), &ipv6->sin6_addr) == 1) {
        address.ss_family = AF_INET6;
    } else {
        return false;  // a name other than localhost may resolve to anything
    }
    return special_purpose_kind(reinterpret_cast<const sockaddr*>(&address)) == "loopback";
}

namespace {

std::vector<Network> allowed_networks_from(const Config& config) {
    std::vector<Network> networks;
    for (const std::string& item : config.get_list(kAllowedNetworksKey)) {
        auto network = Network::parse(item);
        if (!network)
            throw ConfigError(kAllowedNetworksKey,
                              "\"" + item +
                                  "\" is not a network; expected a comma-separated CIDR list "
                                  "(e.g. 10.0.0.0/8,::1/128)");
        networks.push_back(*network);
    }
    return networks;
}

}  // namespace

AddressPolicy webhook_address_policy(const Config& config) {
    return AddressPolicy(allowed_networks_from(config));
}

SubscriptionSettings subscription_settings_from_config(const Config& config) {
    SubscriptionSettings settings;
    settings.store.url = config.get_url(kStoreUrlKey);
    if (settings.store.url.empty())
        throw ConfigError(kStoreUrlKey, "required; expected a PostgreSQL URL (postgres://user@host:5432/db)");
    settings.store.cache_enabled = config.get_bool(kCacheEnabledKey, settings.store.cache_enabled);
    settings.store.cache_refresh_interval =
        config.get_duration(kCacheRefreshIntervalKey, settings.store.cache_refresh_interval);
    if (settings.store.cache_refresh_interval.count() <= 0)
        throw ConfigError(kCacheRefreshIntervalKey, "must be a positive duration (e.g. 60s)");

    SubscriptionServerSettings& server = settings.server;
    server.address = config.get_string(kServerAddressKey, server.address);
    server.read_timeout = config.get_duration(kServerReadTimeoutKey, server.read_timeout);
    server.write_timeout = config.get_duration(kServerWriteTimeoutKey, server.write_timeout);
    server.token = config.get_string(kServerTokenKey);
    server.allow_unauthenticated =
        config.get_bool(kServerAllowUnauthenticatedKey, server.allow_unauthenticated);
    validate(server);

    settings.allowed_networks = allowed_networks_from(config);
    return settings;
}

void validate(const SubscriptionServerSettings& server) {
    std::string host;
    int port = 0;
    if (!parse_listen_address(server.address, host, port))
        throw ConfigError(
            kServerAddressKey,
            "\"" + server.address + "\" is not host:port (e.g. :9900, 127.0.0.1:9900 or [::1]:9900)");
    if (server.read_timeout.count() <= 0)
        throw ConfigError(kServerReadTimeoutKey, "must be a positive duration (e.g. 5s)");
    if (server.write_timeout.count() <= 0)
        throw ConfigError(kServerWriteTimeoutKey, "must be a positive duration (e.g. 10s)");
    if (server.max_body_bytes == 0)
        throw ConfigError("", "subscription server: max_body_bytes must be positive");
    if (server.token.empty() && !server.allow_unauthenticated && !is_loopback_listen_host(host))
        throw ConfigError(kServerTokenKey, "required when " + std::string(kServerAddressKey) + " (\"" +
                                               server.address +
                                               "\") is not a loopback address; set a token, "
                                               "listen on 127.0.0.1 or [::1], or set " +
                                               kServerAllowUnauthenticatedKey + "=true");
}

void validate(const Config& config) {
    (void)subscription_settings_from_config(config);
}

}  // namespace pgstream::webhooks
