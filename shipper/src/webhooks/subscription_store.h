// pgstream.webhook_subscriptions over libpq (migration 0008), and the SubscriptionSource the notifier reads:
// a fresh read per call (cache off) or a copy refreshed in the background (cache on).
//
// A store that is down is a runtime condition: every call reconnects, failures throw StoreUnavailable (the
// subscription server answers 503) and readiness() says why until a call succeeds again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "util/pg.h"
#include "util/stop_token.h"
#include "webhooks/subscription.h"
#include "webhooks/subscription_settings.h"

namespace pgstream::webhooks {

// The store could not be reached or refused the statement. The message is safe to log (no password).
class StoreUnavailable : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class SubscriptionStore {
  public:
    // No I/O: the first call connects.
    explicit SubscriptionStore(std::string url);

    // Every subscription, by id. Throws StoreUnavailable.
    std::vector<Subscription> list();

    struct UpsertResult {
        Subscription subscription;  // as stored, with its id
        bool created = false;       // false: the (url, schema, table) existed and was replaced
    };
    // Creates the subscription for (url, schema, table) or replaces its event types and secret (an absent
    // secret removes it). Throws StoreUnavailable.
    UpsertResult upsert(const Subscription& subscription);

    // Removes the subscription for (url, schema, table); returns its id, std::nullopt when there was none.
    // Throws StoreUnavailable.
    std::optional<int64_t> remove(const std::string& url, const std::string& schema,
                                  const std::string& table);

    // "" when the last call succeeded (or none was made yet), else why it failed. Non-blocking.
    std::string readiness() const;

  private:
    template <typename Operation>
    auto with_connection(Operation operation) -> decltype(operation(static_cast<PGconn*>(nullptr)));
    void record_outcome(const std::string& error);

    const std::string url_;
    std::mutex connection_mutex_;  // one statement at a time on the one connection
    pg::ConnPtr connection_;
    mutable std::mutex status_mutex_;
    std::string last_error_;
};

// "{I,U}" -> {"I", "U"} (a text[] as libpq prints it) and back.
std::vector<std::string> parse_text_array(const std::string& literal);
std::string text_array_literal(const std::vector<std::string>& items);

class StoreSubscriptionSource : public SubscriptionSource {
  public:
    // `stop`: the pipeline's stop; it ends the refresher as stop() does. No I/O.
    StoreSubscriptionSource(std::shared_ptr<SubscriptionStore> store, SubscriptionStoreSettings settings,
                            StopToken stop = {});
    ~StoreSubscriptionSource() override;
    StoreSubscriptionSource(const StoreSubscriptionSource&) = delete;
    StoreSubscriptionSource& operator=(const StoreSubscriptionSource&) = delete;

    // With the cache on: starts the background refresher (first read at once). Without it: nothing to start.
    void start();
    void stop();

    // Cache off: reads the store (one query), except within a second of a failed read, when the last list
    // read stays in force. Cache on: the copy last read.
    std::shared_ptr<const std::vector<Subscription>> current() override;
    std::string readiness() const override;

    // The subscriptions changed (the subscription server wrote them): with the cache on, re-read now rather
    // than at the next interval.
    void invalidate();

    // Successful reads so far (tests and status).
    uint64_t reads() const;

  private:
    // Reads the store into snapshot_; false when it failed.
    bool refresh();
    void run_refresher();

    const std::shared_ptr<SubscriptionStore> store_;
    const SubscriptionStoreSettings settings_;
    StopToken stop_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::shared_ptr<const std::vector<Subscription>> snapshot_;
    std::chrono::steady_clock::time_point retry_not_before_{};
    uint64_t reads_ = 0;
    bool invalidated_ = false;
    bool stopping_ = false;

    std::mutex
        read_mutex_;  // one read of the store at a time (cache off: concurrent callers share the store)
    std::thread refresher_;
};

}  // namespace pgstream::webhooks
