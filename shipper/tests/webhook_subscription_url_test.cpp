// Webhook URL parsing (what a subscription may name) and the text[] literals of the subscription store.
#include <gtest/gtest.h>

#include "webhooks/subscription_store.h"
#include "webhooks/subscription_url.h"

namespace pgstream::webhooks {
namespace {

WebhookUrl parsed_or_fail(const std::string& url) {
    WebhookUrl parsed;
    std::string why = parse_webhook_url(url, parsed);
    EXPECT_EQ(why, "") << url;
    return parsed;
}

std::string refusal_of(const std::string& url) {
    WebhookUrl parsed;
    return parse_webhook_url(url, parsed);
}

TEST(WebhookUrl, HostAndPortOfTheAcceptedForms) {
    WebhookUrl plain = parsed_or_fail("http://hooks.example.com/a/b?c=d");
    EXPECT_EQ(plain.scheme, "http");
    EXPECT_EQ(plain.host, "hooks.example.com");
    EXPECT_EQ(plain.port, "80");
    WebhookUrl secure = parsed_or_fail("HTTPS://1.1.1.1:8443");
    EXPECT_EQ(secure.scheme, "https");
    EXPECT_EQ(secure.host, "1.1.1.1");
    EXPECT_EQ(secure.port, "8443");
    EXPECT_EQ(parsed_or_fail("https://[2606:4700::1111]/x").host, "2606:4700::1111");
    EXPECT_EQ(parsed_or_fail("https://[2606:4700::1111]/x").port, "443");
    EXPECT_EQ(parsed_or_fail("http://[2606:4700::1111]:81#f").port, "81");
}

TEST(WebhookUrl, MalformedOrUnsafeFormsAreRefusedWithoutQuotingTheUrl) {
    EXPECT_NE(refusal_of("").find("empty"), std::string::npos);
    EXPECT_NE(refusal_of("file:///etc/passwd").find("http or https"), std::string::npos);
    EXPECT_NE(refusal_of("gopher://1.1.1.1/").find("http or https"), std::string::npos);
    EXPECT_NE(refusal_of("//1.1.1.1/").find("absolute"), std::string::npos);
    EXPECT_NE(refusal_of("https://u:topsecret@1.1.1.1/").find("credentials"), std::string::npos);
    EXPECT_EQ(refusal_of("https://u:topsecret@1.1.1.1/").find("topsecret"), std::string::npos);
    EXPECT_NE(refusal_of("https:///x").find("no host"), std::string::npos);
    EXPECT_NE(refusal_of("https://:80/x").find("no host"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1:/").find("empty port"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1:0/").find("port"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1:65536/").find("port"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1:8o/").find("port"), std::string::npos);
    EXPECT_NE(refusal_of("https://[::1/").find("unterminated"), std::string::npos);
    EXPECT_NE(refusal_of("https://[::1]x/").find("after"), std::string::npos);
    EXPECT_NE(refusal_of("https://::1/").find("brackets"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1/a b").find("spaces"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1/\r\nX: y").find("control"), std::string::npos);
    EXPECT_NE(refusal_of("https://1.1.1.1/" + std::string(2100, 'a')).find("longer"), std::string::npos);
}

TEST(WebhookUrl, ResolvedAddressesGoThroughThePolicy) {
    EXPECT_EQ(webhook_url_refusal("https://1.1.1.1/", AddressPolicy()), "");
    EXPECT_NE(webhook_url_refusal("https://127.0.0.2/", AddressPolicy()).find("loopback"), std::string::npos);
    EXPECT_NE(webhook_url_refusal("http://[::ffff:169.254.169.254]/", AddressPolicy()).find("link-local"),
              std::string::npos);
    EXPECT_EQ(webhook_url_refusal("https://127.0.0.2/", AddressPolicy({*Network::parse("127.0.0.0/8")})), "");
    EXPECT_NE(webhook_url_refusal("ftp://1.1.1.1/", AddressPolicy::allow_all()), "");
}

TEST(SubscriptionStoreArrays, TextArrayLiteralsRoundTrip) {
    EXPECT_EQ(parse_text_array("{}"), std::vector<std::string>{});
    EXPECT_EQ(parse_text_array("{I,U,D}"), (std::vector<std::string>{"I", "U", "D"}));
    EXPECT_EQ(parse_text_array(R"({"a,b","c\"d",""})"), (std::vector<std::string>{"a,b", "c\"d", ""}));
    for (const std::vector<std::string>& items : {std::vector<std::string>{}, std::vector<std::string>{"I"},
                                                  std::vector<std::string>{"a,b", "c\"d\\", ""}})
        EXPECT_EQ(parse_text_array(text_array_literal(items)), items);
}

}  // namespace
}  // namespace pgstream::webhooks
