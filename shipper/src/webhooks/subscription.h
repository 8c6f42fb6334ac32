// A webhook subscription (a row of pgstream.webhook_subscriptions) and where the notifier gets the ones in
// force.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "wal/event.h"

namespace pgstream::webhooks {

struct Subscription {
    int64_t id = 0;
    std::string url;
    std::string schema;  // "" = all schemas
    std::string table;   // "" = all tables
    // A subset of "I", "U", "D", "T"; empty = all.
    std::vector<std::string> event_types;
    // Standard Webhooks signing secret; std::nullopt = deliveries are not signed.
    std::optional<std::string> secret;

    // Whether `event` is for this subscription: schema, table and event type each match or are "" / empty.
    // A schema change (an insert into pgstream.schema_log) matches as what it is, an insert into
    // pgstream.schema_log, as in the reference, and also as a change of the schema it describes (its
    // schema_name column) for a subscription to that schema's tables ("" table). A logical message (action M)
    // has no schema, table or I/U/D/T type: only a subscription to everything matches it.
    bool matches(const Event& event) const;
};

class SubscriptionSource {
  public:
    virtual ~SubscriptionSource() = default;
    // The subscriptions in force; cheap to call per batch; thread-safe. nullptr while they have never been
    // read (the store unreachable since start): that is "unknown", not "no subscriptions" — the caller
    // retries later and acknowledges nothing on it. Once read, a store that goes down leaves the last list in
    // force.
    virtual std::shared_ptr<const std::vector<Subscription>> current() = 0;
    // "" when the store is reachable, else why not (for GET /ready). Thread-safe, non-blocking.
    virtual std::string readiness() const { return {}; }
};

}  // namespace pgstream::webhooks
