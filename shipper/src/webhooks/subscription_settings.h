// Settings of the webhook subscription store, its cache and the subscription server (docs/webhooks.md), read
// from PGSTREAM_WEBHOOK_* keys with the reference's defaults, plus what a server reachable from a network
// needs (a bearer token, an explicit opt-in to go without one, the networks subscribers may be on).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "http/address_policy.h"
#include "pipeline/module.h"

namespace pgstream {
class Config;
}

namespace pgstream::webhooks {

inline constexpr const char* kStoreUrlKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL";
inline constexpr const char* kCacheEnabledKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_ENABLED";
inline constexpr const char* kCacheRefreshIntervalKey =
    "PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_REFRESH_INTERVAL";
inline constexpr const char* kServerAddressKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS";
inline constexpr const char* kServerReadTimeoutKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_READ_TIMEOUT";
inline constexpr const char* kServerWriteTimeoutKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_WRITE_TIMEOUT";
inline constexpr const char* kServerTokenKey = "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_TOKEN";
inline constexpr const char* kServerAllowUnauthenticatedKey =
    "PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ALLOW_UNAUTHENTICATED";
inline constexpr const char* kAllowedNetworksKey = "PGSTREAM_WEBHOOK_ALLOWED_NETWORKS";

struct SubscriptionStoreSettings {
    std::string
        url;  // PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL (libpq URL; may hold a password: never log it)
    // PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_ENABLED. false: the subscriptions are re-read whenever the
    // notifier asks for them (once per batch), so a subscription committed before a change applies to it.
    // true: they are read in the background every refresh_interval (at most that stale).
    bool cache_enabled = false;
    std::chrono::milliseconds cache_refresh_interval{60000};  // ..._CACHE_REFRESH_INTERVAL
};

struct SubscriptionServerSettings {
    std::string address = ":9900";  // PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS; ":port" = all
    std::chrono::milliseconds read_timeout{5000};    // ..._READ_TIMEOUT
    std::chrono::milliseconds write_timeout{10000};  // ..._WRITE_TIMEOUT
    std::string token;                               // ..._TOKEN (bearer); "" = none. A secret: never log it.
    bool allow_unauthenticated = false;              // ..._ALLOW_UNAUTHENTICATED
    size_t max_body_bytes = 64 * 1024;               // larger request bodies are answered 413
};

struct SubscriptionSettings {
    SubscriptionStoreSettings store;
    SubscriptionServerSettings server;
    // PGSTREAM_WEBHOOK_ALLOWED_NETWORKS: non-public networks subscribers may be on (CIDR list).
    std::vector<Network> allowed_networks;
};

// The settings above with their defaults and one-line docs, for the webhook module's registration.
std::vector<Setting> subscription_store_settings();
std::vector<Setting> subscription_server_settings();

// Reads and checks the settings; throws ConfigError (one line naming the setting and the accepted form, never
// a secret). The store URL is required. No I/O.
SubscriptionSettings subscription_settings_from_config(const Config& config);
// subscription_settings_from_config() for its checks only: the module's validate().
void validate(const Config& config);
// The server's part of those checks (the address, positive timeouts, the token rule); throws ConfigError.
void validate(const SubscriptionServerSettings& settings);

// Where webhook URLs may point: public addresses plus PGSTREAM_WEBHOOK_ALLOWED_NETWORKS. The subscription
// server checks a URL's resolved addresses with it at subscribe time, the notifier each connection's address.
// Throws ConfigError for a malformed network.
AddressPolicy webhook_address_policy(const Config& config);

// Whether a listen host ("127.0.0.1", "::1", "localhost", "" / "0.0.0.0" = every address) is loopback only.
bool is_loopback_listen_host(const std::string& host);

}  // namespace pgstream::webhooks
