// Subscription store / server settings: defaults, the token rule for non-loopback addresses, allowed
// networks.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "config/config.h"
#include "webhooks/subscription_settings.h"

namespace pgstream::webhooks {
namespace {

Config config_with(std::map<std::string, std::string> values) {
    values.emplace(kStoreUrlKey, "postgres://user:hunter2@db.example.com:5432/app");
    return Config(std::move(values));
}

std::string config_error(const Config& config) {
    try {
        validate(config);
    } catch (const ConfigError& error) {
        return error.what();
    }
    return {};
}

sockaddr_in ipv4(const char* text) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    inet_pton(AF_INET, text, &address.sin_addr);
    return address;
}

TEST(WebhookSubscriptionSettings, DefaultsAreTheReferenceOnes) {
    SubscriptionSettings settings =
        subscription_settings_from_config(config_with({{kServerAllowUnauthenticatedKey, "true"}}));
    EXPECT_FALSE(settings.store.cache_enabled);
    EXPECT_EQ(settings.store.cache_refresh_interval, std::chrono::seconds(60));
    EXPECT_EQ(settings.server.address, ":9900");
    EXPECT_EQ(settings.server.read_timeout, std::chrono::seconds(5));
    EXPECT_EQ(settings.server.write_timeout, std::chrono::seconds(10));
    EXPECT_TRUE(settings.server.token.empty());
    EXPECT_TRUE(settings.allowed_networks.empty());
}

TEST(WebhookSubscriptionSettings, EveryKeyIsListedWithItsDefault) {
    std::map<std::string, std::string> listed;
    for (const auto& list : {subscription_store_settings(), subscription_server_settings()})
        for (const Setting& setting : list) listed[setting.key] = setting.default_value;
    EXPECT_EQ(listed.at(kServerAddressKey), ":9900");
    EXPECT_EQ(listed.at(kCacheRefreshIntervalKey), "60s");
    EXPECT_EQ(listed.at(kServerAllowUnauthenticatedKey), "false");
    for (const char* key : {kStoreUrlKey, kCacheEnabledKey, kServerReadTimeoutKey, kServerWriteTimeoutKey,
                            kServerTokenKey, kAllowedNetworksKey})
        EXPECT_EQ(listed.count(key), 1u) << key;
}

TEST(WebhookSubscriptionSettings, PublicAddressWithoutTokenIsAConfigurationError) {
    // The default address listens on every interface.
    std::string error = config_error(config_with({}));
    EXPECT_NE(error.find(kServerTokenKey), std::string::npos) << error;
    EXPECT_NE(error.find(kServerAllowUnauthenticatedKey), std::string::npos) << error;
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    EXPECT_EQ(error.find("hunter2"), std::string::npos) << error;
    EXPECT_NE(config_error(config_with({{kServerAddressKey, "0.0.0.0:9900"}})), "");
    EXPECT_NE(config_error(config_with({{kServerAddressKey, "192.0.2.10:9900"}})), "");
    EXPECT_NE(config_error(config_with({{kServerAddressKey, "hooks.example.com:9900"}})), "");
}

TEST(WebhookSubscriptionSettings, TokenLoopbackOrExplicitOptInAreAccepted) {
    EXPECT_EQ(config_error(config_with({{kServerTokenKey, "s3cret"}})), "");
    EXPECT_EQ(config_error(config_with({{kServerAllowUnauthenticatedKey, "true"}})), "");
    EXPECT_EQ(config_error(config_with({{kServerAddressKey, "127.0.0.1:9900"}})), "");
    EXPECT_EQ(config_error(config_with({{kServerAddressKey, "[::1]:9900"}})), "");
    EXPECT_EQ(config_error(config_with({{kServerAddressKey, "localhost:0"}})), "");
}

// The configuration error of a token-protected server with `key` set to `value`.
std::string error_with(const std::string& key, const std::string& value) {
    return config_error(config_with({{kServerTokenKey, "t"}, {key, value}}));
}

TEST(WebhookSubscriptionSettings, MalformedValuesNameTheirSetting) {
    EXPECT_NE(
        config_error(Config(std::map<std::string, std::string>{{kServerTokenKey, "t"}})).find(kStoreUrlKey),
        std::string::npos);
    EXPECT_NE(error_with(kStoreUrlKey, "nonsense").find(kStoreUrlKey), std::string::npos);
    for (const auto& [key, value] :
         std::vector<std::pair<std::string, std::string>>{{kServerAddressKey, "9900"},
                                                          {kServerAddressKey, "::1:9900"},
                                                          {kAllowedNetworksKey, "10.0.0.0/33"},
                                                          {kAllowedNetworksKey, "10.0.0.0/8,,::1/128"},
                                                          {kCacheRefreshIntervalKey, "0s"},
                                                          {kCacheEnabledKey, "maybe"},
                                                          {kServerReadTimeoutKey, "soon"},
                                                          {kServerWriteTimeoutKey, "0s"},
                                                          {kServerAllowUnauthenticatedKey, "sure"}}) {
        std::string error = error_with(key, value);
        EXPECT_NE(error.find(key), std::string::npos) << key << "=" << value << ": " << error;
        EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    }
}

TEST(WebhookSubscriptionSettings, AddressPolicyAllowsOnlyTheListedNetworks) {
    sockaddr_in private_address = ipv4("10.1.2.3");
    sockaddr_in loopback = ipv4("127.0.0.1");
    AddressPolicy strict = webhook_address_policy(Config());
    EXPECT_EQ(strict.refusal(reinterpret_cast<sockaddr*>(&private_address)), "private");
    AddressPolicy allowing = webhook_address_policy(
        Config(std::map<std::string, std::string>{{kAllowedNetworksKey, "10.0.0.0/8"}}));
    EXPECT_EQ(allowing.refusal(reinterpret_cast<sockaddr*>(&private_address)), "");
    EXPECT_EQ(allowing.refusal(reinterpret_cast<sockaddr*>(&loopback)), "loopback");
}

}  // namespace
}  // namespace pgstream::webhooks
