#include "webhooks/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "wal/json.h"

namespace pgstream::webhooks {

std::string idempotency_key(int64_t subscription_id, const Event& event) {
    std::string identity = std::to_string(subscription_id);
    identity += '\n';
    event.commit_lsn.append_to(identity);
    identity += '\n';
    event.lsn.append_to(identity);
    identity += '\n';
    identity += event.position;
    identity += '\n';
    identity += static_cast<char>(event.action);
    identity += '\n';
    identity += event.schema;
    identity += '\n';
    identity += event.table;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(identity.data()), identity.size(), digest);
    static const char kHex[] = "0123456789abcdef";
    std::string key = "whk_";
    for (int i = 0; i < 16; ++i) {
        key += kHex[digest[i] >> 4];
        key += kHex[digest[i] & 0xf];
    }
    return key;
}

std::optional<std::string> signing_key(const std::string& secret) {
    static constexpr std::string_view kPrefix = "whsec_";
    if (secret.compare(0, kPrefix.size(), kPrefix) != 0) return secret;
    try {
        return base64_decode(std::string_view(secret).substr(kPrefix.size()));
    } catch (const JsonError&) {
        return std::nullopt;
    }
}

std::string sign(std::string_view key, std::string_view message_id, int64_t timestamp,
                 std::string_view body) {
    std::string signed_content;
    signed_content.reserve(message_id.size() + body.size() + 24);
    signed_content.append(message_id);
    signed_content += '.';
    signed_content += std::to_string(timestamp);
    signed_content += '.';
    signed_content.append(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_length = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), mac,
         &mac_length);
    return "v1," + base64_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_length));
}

}  // namespace pgstream::webhooks
