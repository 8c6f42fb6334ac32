// What makes a webhook delivery verifiable and de-duplicable by its receiver: the Idempotency-Key and the
// Standard Webhooks signature (https://www.standardwebhooks.com, "Signature scheme").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "wal/event.h"

namespace pgstream::webhooks {

// The key of one event's delivery to one subscription: the same on every retry and after a restart (the
// source sends the same event again from the same position), different for every other (subscription,
// event). It is "whk_" + 32 hex digits of SHA-256 over the subscription id and the event's position
// (commit LSN, LSN, source position, action, schema, table: a TRUNCATE of several tables shares one LSN).
std::string idempotency_key(int64_t subscription_id, const Event& event);

// The HMAC key of a secret. Standard Webhooks secrets are "whsec_" + base64 of the key bytes: the key is the
// decoded part. Any other secret is used as it is (its bytes are the key). std::nullopt when a "whsec_"
// secret is not valid base64.
std::optional<std::string> signing_key(const std::string& secret);

// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)): the webhook-signature header value.
std::string sign(std::string_view key, std::string_view message_id, int64_t timestamp, std::string_view body);

}  // namespace pgstream::webhooks
