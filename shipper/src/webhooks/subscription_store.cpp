#include "webhooks/subscription_store.h"

#include <algorithm>

#include "util/log.h"
#include "util/redact.h"

namespace pgstream::webhooks {

namespace {

constexpr const char* kListSql =
    "SELECT id, url, schema_name, table_name, event_types, secret FROM pgstream.webhook_subscriptions ORDER "
    "BY id";
constexpr const char* kUpsertSql =
    "INSERT INTO pgstream.webhook_subscriptions (url, schema_name, table_name, event_types, secret) "
    "VALUES ($1, $2, $3, $4::text[], $5) "
    "ON CONFLICT (url, schema_name, table_name) DO UPDATE "
    "SET event_types = EXCLUDED.event_types, secret = EXCLUDED.secret, updated_at = pg_catalog.now() "
    "RETURNING id, (xmax = 0) AS created";
constexpr const char* kRemoveSql =
    "DELETE FROM pgstream.webhook_subscriptions WHERE url = $1 AND schema_name = $2 AND table_name = $3 "
    "RETURNING id";

// A failed read is retried this long after at the soonest: a store that is down costs one connection attempt
// per second, not one per batch.
constexpr std::chrono::milliseconds kRetryAfterFailure{1000};

Subscription subscription_from_row(const PGresult* result, int row) {
    Subscription subscription;
    subscription.id = std::stoll(pg::value(result, row, 0).value_or("0"));
    subscription.url = pg::value(result, row, 1).value_or("");
    subscription.schema = pg::value(result, row, 2).value_or("");
    subscription.table = pg::value(result, row, 3).value_or("");
    subscription.event_types = parse_text_array(pg::value(result, row, 4).value_or("{}"));
    subscription.secret = pg::value(result, row, 5);
    return subscription;
}

}  // namespace

std::vector<std::string> parse_text_array(const std::string& literal) {
    std::vector<std::string> items;
    if (literal.size() < 2 || literal.front() != '{' || literal.back() != '}') return items;
    std::string item;
    bool quoted = false, any = false;
    for (size_t i = 1; i + 1 < literal.size(); ++i) {
        char c = literal[i];
        if (c == '"') {
            quoted = !quoted;
            any = true;
        } else if (c == '\\' && i + 2 < literal.size()) {
            item += literal[++i];
        } else if (c == ',' && !quoted) {
            items.push_back(std::move(item));
            item.clear();
            any = false;
        } else {
            item += c;
            any = true;
        }
    }
    if (any || !items.empty()) items.push_back(std::move(item));
    return items;
}

std::string text_array_literal(const std::vector<std::string>& items) {
    std::string literal = "{";
    for (size_t i = 0; i < items.size(); ++i) {
        if (i > 0) literal += ',';
        literal += '"';
        for (char c : items[i]) {
            if (c == '"' || c == '\\') literal += '\\';
            literal += c;
        }
        literal += '"';
    }
    return literal + "}";
}

SubscriptionStore::SubscriptionStore(std::string url) : url_(std::move(url)) {}

void SubscriptionStore::record_outcome(const std::string& error) {
    std::lock_guard<std::mutex> lock(status_mutex_);
    if (error != last_error_ && !error.empty()) log::warn("webhook subscription store: ", error);
    if (error.empty() && !last_error_.empty()) log::info("webhook subscription store: reachable again");
    last_error_ = error;
}

std::string SubscriptionStore::readiness() const {
    std::lock_guard<std::mutex> lock(status_mutex_);
    return last_error_;
}

template <typename Operation>
auto SubscriptionStore::with_connection(Operation operation)
    -> decltype(operation(static_cast<PGconn*>(nullptr))) {
    std::lock_guard<std::mutex> lock(connection_mutex_);
    // A connection that was fine before may have been cut since (a server restart): one fresh attempt.
    for (int attempt = 0;; ++attempt) {
        bool fresh = false;
        try {
            if (!connection_ || PQstatus(connection_.get()) != CONNECTION_OK) {
                connection_.reset();
                connection_ = pg::connect(url_, false, "pgstream webhook subscriptions");
                fresh = true;
            }
            auto outcome = operation(connection_.get());
            record_outcome({});
            return outcome;
        } catch (const pg::Error& error) {
            bool connection_lost = connection_ && PQstatus(connection_.get()) != CONNECTION_OK;
            if (connection_lost && !fresh && attempt == 0) continue;
            std::string why =
                "cannot use pgstream.webhook_subscriptions: " + redact::scrub(error.what(), url_);
            record_outcome(why);
            throw StoreUnavailable(why);
        }
    }
}

std::vector<Subscription> SubscriptionStore::list() {
    return with_connection([](PGconn* conn) {
        pg::ResultPtr result = pg::exec(conn, kListSql);
        std::vector<Subscription> subscriptions;
        for (int row = 0; row < PQntuples(result.get()); ++row)
            subscriptions.push_back(subscription_from_row(result.get(), row));
        return subscriptions;
    });
}

SubscriptionStore::UpsertResult SubscriptionStore::upsert(const Subscription& subscription) {
    return with_connection([&subscription](PGconn* conn) {
        pg::ResultPtr result = pg::exec(conn, kUpsertSql,
                                        {subscription.url, subscription.schema, subscription.table,
                                         text_array_literal(subscription.event_types), subscription.secret});
        UpsertResult outcome{subscription, false};
        outcome.subscription.id = std::stoll(pg::value(result.get(), 0, 0).value_or("0"));
        outcome.created = pg::value(result.get(), 0, 1).value_or("f") == "t";
        return outcome;
    });
}

std::optional<int64_t> SubscriptionStore::remove(const std::string& url, const std::string& schema,
                                                 const std::string& table) {
    return with_connection([&](PGconn* conn) -> std::optional<int64_t> {
        pg::ResultPtr result = pg::exec(conn, kRemoveSql, {url, schema, table});
        if (PQntuples(result.get()) == 0) return std::nullopt;
        return std::stoll(pg::value(result.get(), 0, 0).value_or("0"));
    });
}

StoreSubscriptionSource::StoreSubscriptionSource(std::shared_ptr<SubscriptionStore> store,
                                                 SubscriptionStoreSettings settings, StopToken stop)
    : store_(std::move(store)), settings_(std::move(settings)), stop_(std::move(stop)) {}

StoreSubscriptionSource::~StoreSubscriptionSource() {
    stop();
}

void StoreSubscriptionSource::start() {
    if (!settings_.cache_enabled || refresher_.joinable()) return;
    refresher_ = std::thread([this] { run_refresher(); });
}

void StoreSubscriptionSource::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (refresher_.joinable()) refresher_.join();
}

bool StoreSubscriptionSource::refresh() {
    std::lock_guard<std::mutex> read_lock(read_mutex_);
    try {
        auto subscriptions = std::make_shared<const std::vector<Subscription>>(store_->list());
        std::lock_guard<std::mutex> lock(mutex_);
        snapshot_ = std::move(subscriptions);
        ++reads_;
        return true;
    } catch (const StoreUnavailable&) {
        std::lock_guard<std::mutex> lock(mutex_);
        retry_not_before_ = std::chrono::steady_clock::now() + kRetryAfterFailure;
        return false;  // the store logged it and readiness() reports it
    }
}

void StoreSubscriptionSource::run_refresher() {
    for (;;) {
        bool read = refresh();
        std::unique_lock<std::mutex> lock(mutex_);
        // Until a read succeeds the notifier has no subscriptions to go by: retry sooner than the interval.
        auto wait =
            read ? settings_.cache_refresh_interval
                 : std::min(settings_.cache_refresh_interval, std::chrono::milliseconds(kRetryAfterFailure));
        stop_.wait_for(lock, changed_, wait, [this] { return stopping_ || invalidated_; });
        if (stopping_ || stop_.stop_requested()) return;
        invalidated_ = false;
    }
}

std::shared_ptr<const std::vector<Subscription>> StoreSubscriptionSource::current() {
    if (!settings_.cache_enabled) {
        bool may_read;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            may_read = std::chrono::steady_clock::now() >= retry_not_before_;
        }
        if (may_read) refresh();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    return snapshot_;
}

std::string StoreSubscriptionSource::readiness() const {
    std::string store_error = store_->readiness();
    if (!store_error.empty()) return store_error;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!snapshot_ && settings_.cache_enabled) return "webhook subscriptions not read yet";
    return {};
}

void StoreSubscriptionSource::invalidate() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        invalidated_ = true;
    }
    changed_.notify_all();
}

uint64_t StoreSubscriptionSource::reads() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return reads_;
}

}  // namespace pgstream::webhooks
