#include "webhooks/signing.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <memory>

#include "wal/json.h"

namespace pgstream::webhooks {

namespace {

// SHA-256 of `data`. OpenSSL 3's one-shot SHA256() fetches the algorithm from the provider at every call,
// which cost more than the hash itself for a key per delivery: fetched once, with a context per thread.
void sha256(const std::string& data, unsigned char digest[SHA256_DIGEST_LENGTH]) {
    static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                                       &EVP_MD_CTX_free);
    if (!algorithm || !context || !EVP_DigestInit_ex2(context.get(), algorithm, nullptr) ||
        !EVP_DigestUpdate(context.get(), data.data(), data.size()) ||
        !EVP_DigestFinal_ex(context.get(), digest, nullptr)) {
        SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
    }
}

}  // namespace

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
    sha256(identity, digest);
    static const char kHex[] = "0123456789abcdef";
    std::string key;
    key.reserve(36);
    key += "whk_";
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
