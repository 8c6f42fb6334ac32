// Which webhook URLs a subscription may name: http or https, no credentials in the URL, and a host whose
// every resolved address the AddressPolicy accepts (no loopback, link-local such as the cloud metadata
// address 169.254.169.254, private, multicast or unspecified address unless its network is allowed). The
// notifier checks the address again at connect time: a name may resolve differently later (DNS rebinding).
#pragma once

#include <string>

#include "http/address_policy.h"

namespace pgstream::webhooks {

struct WebhookUrl {
    std::string scheme;  // "http" or "https"
    std::string host;    // without the brackets of an IPv6 literal
    std::string port;    // as written, or the scheme's default
};

// Parses `url`: "" when it is well-formed, else why not (one line that quotes nothing of the URL).
std::string parse_webhook_url(const std::string& url, WebhookUrl& parsed);

// "" when `url` may be subscribed, else why not (one line). Resolves the host (blocking DNS).
std::string webhook_url_refusal(const std::string& url, const AddressPolicy& policy);

}  // namespace pgstream::webhooks
