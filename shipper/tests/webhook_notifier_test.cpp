// The webhook notifier against real HTTP receivers in this process (cpp-httplib on 127.0.0.1), with an
// in-memory subscription source, acknowledger and dead-letter store: order per subscription, isolation
// between subscriptions, retries, dead letters, strict mode, the memory guard, signatures and the stop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <set>

#include "pipeline/module.h"
#include "support/process.h"
#include "support/webhook_receiver.h"
#include "webhooks/notifier.h"
#include "webhooks/signing.h"
#include "webhooks/webhook_module.h"

using namespace pgstream;
using namespace pgstream::webhooks;
using pgstream_it::ReceivedWebhook;
using pgstream_it::WebhookAnswer;
using pgstream_it::WebhookReceiver;
using namespace std::chrono_literals;

namespace {

class FixedSubscriptions : public SubscriptionSource {
  public:
    explicit FixedSubscriptions(std::vector<Subscription> subscriptions)
        : subscriptions_(std::make_shared<const std::vector<Subscription>>(std::move(subscriptions))) {}
    std::shared_ptr<const std::vector<Subscription>> current() override { return subscriptions_; }

  private:
    std::shared_ptr<const std::vector<Subscription>> subscriptions_;
};

// Records acknowledgements by LSN.
class RecordingAcknowledger : public Acknowledger {
  public:
    void acknowledge(const Event& event) override {
        std::lock_guard<std::mutex> lock(mutex_);
        acknowledged_.push_back(event.lsn.value);
        changed_.notify_all();
    }
    void retain(const Event&, int) override {}
    std::vector<uint64_t> acknowledged() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return acknowledged_;
    }
    bool wait_for(size_t count, std::chrono::milliseconds timeout) const {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] { return acknowledged_.size() >= count; });
    }

  private:
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<uint64_t> acknowledged_;
};

// Fails its first `failures` writes (a store that is down), then keeps every letter.
class MemoryDeadLetters : public DeadLetterStore {
  public:
    explicit MemoryDeadLetters(int failures = 0) : failures_(failures) {}
    void write(const DeadLetter& letter) override {
        std::lock_guard<std::mutex> lock(mutex_);
        ++attempts_;
        if (failures_ > 0) {
            --failures_;
            throw std::runtime_error("connection refused");
        }
        letters_.push_back(letter);
    }
    std::string describe() const override { return "memory"; }
    std::vector<DeadLetter> letters() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return letters_;
    }
    int attempts() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return attempts_;
    }

  private:
    mutable std::mutex mutex_;
    int failures_;
    int attempts_ = 0;
    std::vector<DeadLetter> letters_;
};

Subscription subscription(int64_t id, const std::string& url, const std::string& table = "",
                          std::optional<std::string> secret = std::nullopt) {
    Subscription s;
    s.id = id;
    s.url = url;
    s.table = table;
    s.secret = std::move(secret);
    return s;
}

EventPtr insert(uint64_t lsn, const std::string& table = "orders", size_t padding = 0) {
    auto event = std::make_shared<Event>();
    event->action = Action::Insert;
    event->xid = std::to_string(1000 + lsn);
    event->lsn = Lsn(lsn);
    event->commit_lsn = Lsn(lsn + 1);
    event->schema = "public";
    event->table = table;
    Column column;
    column.name = "note";
    column.type = "text";
    column.value.kind = JsonValue::Kind::String;
    column.value.text = std::string(padding, 'x') + std::to_string(lsn);
    event->columns.push_back(column);
    return event;
}

NotifierSettings fast_settings() {
    NotifierSettings settings;
    settings.backoff.kind = BackoffSettings::Kind::kExponential;
    settings.backoff.initial_interval = 20ms;
    settings.backoff.max_interval = 100ms;
    settings.backoff.max_retries = 5;
    settings.client_timeout = 2000ms;
    return settings;
}

// Two lanes, like the shipper's client on a 2-core machine: completions of different subscriptions run on
// two threads at once.
HttpClientSettings loopback_allowed() {
    HttpClientSettings settings;
    settings.address_policy = AddressPolicy::allow_all();
    settings.threads = 2;
    return settings;
}

// LSNs of the events a receiver got answered 2xx, in arrival order.
std::vector<uint64_t> delivered_lsns(const WebhookReceiver& receiver) {
    std::vector<uint64_t> lsns;
    for (const auto& webhook : receiver.delivered())
        lsns.push_back(Lsn::parse(webhook.header("x-pgstream-lsn")).value_or(Lsn()).value);
    return lsns;
}

std::vector<uint64_t> range(uint64_t first, uint64_t last, uint64_t step = 10) {
    std::vector<uint64_t> out;
    for (uint64_t lsn = first; lsn <= last; lsn += step) out.push_back(lsn);
    return out;
}

struct Harness {
    explicit Harness(std::vector<Subscription> subscriptions, NotifierSettings settings = fast_settings(),
                     int dead_letter_failures = 0)
        : http(loopback_allowed()) {
        auto store = std::make_unique<MemoryDeadLetters>(dead_letter_failures);
        dead_letters = store.get();
        notifier = std::make_unique<WebhookNotifier>(
            settings, std::make_shared<FixedSubscriptions>(std::move(subscriptions)), http, std::move(store),
            acknowledger, stop);
        notifier->start();
    }
    ~Harness() {
        stop.end_drain();
        notifier->close();
    }
    StopToken stop;
    HttpClient http;
    RecordingAcknowledger acknowledger;
    MemoryDeadLetters* dead_letters = nullptr;
    std::unique_ptr<WebhookNotifier> notifier;
};

}  // namespace

TEST(WebhookSigning, ReproducesTheStandardWebhooksTestVector) {
    // The vector the Standard Webhooks reference libraries test with: "whsec_" + base64 key.
    auto key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    ASSERT_TRUE(key);
    EXPECT_EQ(sign(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
              "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSigning, SecretsWithoutThePrefixAreUsedAsTheyAre) {
    EXPECT_EQ(signing_key("plain secret"), std::optional<std::string>("plain secret"));
    EXPECT_FALSE(signing_key("whsec_not base64!"));
}

TEST(WebhookSigning, IdempotencyKeysAreStablePerSubscriptionAndEvent) {
    auto event = insert(100);
    auto again = insert(100);
    EXPECT_EQ(idempotency_key(1, *event), idempotency_key(1, *again));
    EXPECT_NE(idempotency_key(1, *event), idempotency_key(2, *event));
    EXPECT_NE(idempotency_key(1, *event), idempotency_key(1, *insert(110)));
    // A TRUNCATE of two tables: one LSN, two events.
    EXPECT_NE(idempotency_key(1, *insert(100, "a")), idempotency_key(1, *insert(100, "b")));
    // Stable across versions too (a restart may be an upgrade): SHA-256 of
    // "1\n0/65\n0/64\n\nI\npublic\norders" (subscription, commit LSN, LSN, position, action, schema, table),
    // its first 16 bytes in hex, as computed independently (Python's hashlib).
    EXPECT_EQ(idempotency_key(1, *event), "whk_b548077c1d731864354e91dd588f74c2");
}

TEST(WebhookRetryAfter, SecondsAndHttpDates) {
    auto now = std::chrono::system_clock::from_time_t(784111777);  // Sun, 06 Nov 1994 08:49:37 GMT
    EXPECT_EQ(parse_retry_after("3", now), std::chrono::milliseconds(3000));
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now), std::chrono::milliseconds(10000));
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:07 GMT", now), std::chrono::milliseconds(0));
    EXPECT_FALSE(parse_retry_after("soon", now));
    EXPECT_FALSE(parse_retry_after("", now));
}

TEST(WebhookNotifier, EachSubscriptionGetsItsEventsInOrderWithValidSignatures) {
    WebhookReceiver all, orders_only;
    const std::string secret = "whsec_" + base64_encode("0123456789abcdef0123456789abcdef");
    Harness harness({subscription(1, all.url(), "", secret), subscription(2, orders_only.url(), "orders")});
    for (uint64_t lsn = 10; lsn <= 400; lsn += 10)
        harness.notifier->process(insert(lsn, lsn % 20 ? "orders" : "items"));
    harness.notifier->flush();

    EXPECT_EQ(delivered_lsns(all), range(10, 400));
    EXPECT_EQ(delivered_lsns(orders_only), range(10, 390, 20));
    EXPECT_EQ(harness.acknowledger.acknowledged().size(), 40u);
    std::set<std::string> keys;
    for (const auto& webhook : all.delivered()) {
        EXPECT_EQ(webhook.header("content-type"), "application/json");
        EXPECT_EQ(webhook.body.rfind("{\"Data\":{", 0), 0u) << webhook.body;
        std::string id = webhook.header("webhook-id");
        EXPECT_EQ(id, webhook.header("idempotency-key"));
        keys.insert(id);
        int64_t timestamp = std::stoll(webhook.header("webhook-timestamp"));
        EXPECT_LE(std::abs(timestamp - int64_t(std::time(nullptr))), 60);
        EXPECT_EQ(webhook.header("webhook-signature"),
                  sign("0123456789abcdef0123456789abcdef", id, timestamp, webhook.body));
    }
    EXPECT_EQ(keys.size(), 40u);
    for (const auto& webhook : orders_only.delivered()) EXPECT_EQ(webhook.header("webhook-signature"), "");
}

TEST(WebhookNotifier, ADeadSubscriberDelaysOnlyItselfAndGetsEverythingInOrderOnceBack) {
    WebhookReceiver healthy;
    WebhookReceiver flaky;
    flaky.stop();  // connection refused until it starts again on the same port
    NotifierSettings settings = fast_settings();
    settings.backoff.max_retries = 0;  // forever
    Harness harness({subscription(1, healthy.url()), subscription(2, flaky.url())}, settings);
    for (uint64_t lsn = 10; lsn <= 200; lsn += 10) harness.notifier->process(insert(lsn));
    ASSERT_TRUE(healthy.wait_for_delivered(20, 10s));
    EXPECT_EQ(delivered_lsns(healthy), range(10, 200));
    // Nothing is acknowledged while the other subscriber has not got it.
    EXPECT_TRUE(harness.acknowledger.acknowledged().empty());
    EXPECT_GT(harness.notifier->counters().retried, 0u);

    flaky.start();
    harness.notifier->flush();
    EXPECT_EQ(delivered_lsns(flaky), range(10, 200));
    EXPECT_EQ(harness.acknowledger.acknowledged().size(), 20u);
    EXPECT_EQ(harness.notifier->memory().in_use(), 0u);
}

TEST(WebhookNotifier, ASubscriberThatDoesNotAnswerHoldsOnlyItself) {
    WebhookReceiver healthy, hanging;
    std::mutex mutex;
    std::condition_variable released_cv;
    bool released = false;
    hanging.set_answer([&](const ReceivedWebhook&) {
        std::unique_lock<std::mutex> lock(mutex);
        released_cv.wait(lock, [&] { return released; });
        return WebhookAnswer{};
    });
    pgstream_it::ScopeExit release([&] {
        {
            std::lock_guard<std::mutex> lock(mutex);
            released = true;
        }
        released_cv.notify_all();
    });
    NotifierSettings settings = fast_settings();
    settings.client_timeout = 60s;
    Harness harness({subscription(1, hanging.url()), subscription(2, healthy.url())}, settings);
    for (uint64_t lsn = 10; lsn <= 200; lsn += 10) harness.notifier->process(insert(lsn));
    ASSERT_TRUE(healthy.wait_for_delivered(20, 10s));
    EXPECT_EQ(delivered_lsns(healthy), range(10, 200));
    EXPECT_EQ(hanging.count(), 0u);  // its first request is still unanswered; nothing else was sent to it
    EXPECT_TRUE(harness.acknowledger.acknowledged().empty());
}

TEST(WebhookNotifier, RetriesHonourRetryAfter) {
    WebhookReceiver receiver;
    std::atomic<int> answered{0};
    receiver.set_answer([&](const ReceivedWebhook&) {
        return answered++ == 0 ? WebhookAnswer{429, "1"} : WebhookAnswer{200, ""};
    });
    Harness harness({subscription(1, receiver.url())});
    harness.notifier->process(insert(10));
    harness.notifier->flush();
    auto received = receiver.received();
    ASSERT_EQ(received.size(), 2u);
    // The backoff alone would have waited 20 ms.
    EXPECT_GE(received[1].arrived - received[0].arrived, 950ms);
    EXPECT_EQ(received[0].header("idempotency-key"), received[1].header("idempotency-key"));
    EXPECT_EQ(harness.acknowledger.acknowledged(), std::vector<uint64_t>{10});
}

TEST(WebhookNotifier, APermanentErrorWritesADeadLetterAndTheStreamGoesOn) {
    WebhookReceiver receiver;
    receiver.set_answer([](const ReceivedWebhook& webhook) {
        return webhook.header("x-pgstream-lsn") == Lsn(20).str() ? WebhookAnswer{400, ""} : WebhookAnswer{};
    });
    Harness harness({subscription(7, receiver.url())}, fast_settings(), /*dead_letter_failures=*/2);
    for (uint64_t lsn = 10; lsn <= 50; lsn += 10) harness.notifier->process(insert(lsn));
    harness.notifier->flush();

    EXPECT_EQ(delivered_lsns(receiver), (std::vector<uint64_t>{10, 30, 40, 50}));
    EXPECT_EQ(receiver.count(), 5u);  // a 400 is not retried
    auto letters = harness.dead_letters->letters();
    ASSERT_EQ(letters.size(), 1u);
    EXPECT_EQ(harness.dead_letters->attempts(), 3);  // the store was down twice: retried, not skipped
    EXPECT_EQ(letters[0].subscription_id, 7);
    EXPECT_EQ(letters[0].status, 400);
    EXPECT_EQ(letters[0].attempts, 1);
    EXPECT_EQ(letters[0].lsn, Lsn(20));
    EXPECT_EQ(letters[0].payload, webhook_payload(*insert(20)));
    EXPECT_EQ(letters[0].idempotency_key, idempotency_key(7, *insert(20)));
    EXPECT_EQ(harness.acknowledger.acknowledged().size(), 5u);
}

TEST(WebhookNotifier, RetriesExhaustedWriteADeadLetter) {
    WebhookReceiver receiver;
    receiver.set_answer([](const ReceivedWebhook&) { return WebhookAnswer{503, ""}; });
    NotifierSettings settings = fast_settings();
    settings.backoff.max_retries = 2;
    Harness harness({subscription(1, receiver.url())}, settings);
    harness.notifier->process(insert(10));
    harness.notifier->flush();
    EXPECT_EQ(receiver.count(), 3u);
    ASSERT_EQ(harness.dead_letters->letters().size(), 1u);
    EXPECT_EQ(harness.dead_letters->letters()[0].attempts, 3);
    EXPECT_EQ(harness.acknowledger.acknowledged().size(), 1u);
}

TEST(WebhookNotifier, StrictModeStopsWithoutAcknowledging) {
    WebhookReceiver receiver;
    receiver.set_answer([](const ReceivedWebhook& webhook) {
        return webhook.header("x-pgstream-lsn") == Lsn(20).str() ? WebhookAnswer{404, ""} : WebhookAnswer{};
    });
    NotifierSettings settings = fast_settings();
    settings.strict = true;
    Harness harness({subscription(1, receiver.url())}, settings);
    harness.notifier->process(insert(10));
    harness.notifier->process(insert(20));
    harness.notifier->flush();
    EXPECT_NE(harness.notifier->fatal_error().find("404"), std::string::npos)
        << harness.notifier->fatal_error();
    // The pipeline is told to stop: nothing after the failed event can be confirmed.
    EXPECT_TRUE(pgstream_it::wait_until([&] { return harness.stop.drain_over(); }, 5s));
    EXPECT_EQ(harness.acknowledger.acknowledged(), std::vector<uint64_t>{10});
    EXPECT_TRUE(harness.dead_letters->letters().empty());
    EXPECT_THROW(harness.notifier->process(insert(30)), std::runtime_error);
}

TEST(WebhookNotifier, TheMemoryGuardHoldsTheSourceWhileASubscriberIsDownAndAStopEndsTheWait) {
    NotifierSettings settings = fast_settings();
    settings.backoff.max_retries = 0;
    settings.max_queue_bytes = 64 * 1024;
    Harness harness(
        {subscription(1, "http://127.0.0.1:" + std::to_string(pgstream_it::refused_port()) + "/hook")},
        settings);
    std::atomic<int> accepted{0};
    std::atomic<bool> stopped{false};
    std::thread source([&] {
        try {
            for (uint64_t lsn = 10;; lsn += 10) {
                harness.notifier->process(insert(lsn, "orders", 4096));
                ++accepted;
            }
        } catch (const Stopped&) {
            stopped = true;
        }
    });
    pgstream_it::ScopeExit join([&] {
        harness.stop.request_stop();
        source.join();
    });
    ASSERT_TRUE(pgstream_it::wait_until([&] { return accepted.load() > 3; }, 5s));
    // The source is held once the budget is used: it stops growing.
    ASSERT_TRUE(pgstream_it::wait_until(
        [&] {
            int before = accepted.load();
            std::this_thread::sleep_for(200ms);
            return accepted.load() == before;
        },
        5s, 1ms));
    EXPECT_LE(harness.notifier->memory().peak(), settings.max_queue_bytes);
    EXPECT_LT(accepted.load(), 20);
    harness.stop.request_stop();
    ASSERT_TRUE(pgstream_it::wait_until([&] { return stopped.load(); }, 5s));
    harness.notifier->flush();
    EXPECT_TRUE(harness.acknowledger.acknowledged().empty());
}

TEST(WebhookNotifier, AStopEndsTheBackoffAndLeavesTheEventUnacknowledged) {
    WebhookReceiver receiver;
    receiver.set_answer([](const ReceivedWebhook&) { return WebhookAnswer{500, ""}; });
    NotifierSettings settings = fast_settings();
    settings.backoff.initial_interval = 60s;
    settings.backoff.max_interval = 60s;
    Harness harness({subscription(1, receiver.url())}, settings);
    harness.notifier->process(insert(10));
    // The 500 handled (the delivery waits for its retry), not only received: a stop before the answer arrives
    // abandons the delivery without the last attempt this test is about.
    ASSERT_TRUE(pgstream_it::wait_until([&] { return harness.notifier->counters().retried == 1; }, 5s));
    auto begun = std::chrono::steady_clock::now();
    harness.stop.request_stop();
    harness.notifier->flush();
    EXPECT_LT(std::chrono::steady_clock::now() - begun, 5s);
    EXPECT_EQ(receiver.count(), 2u);  // one last attempt at the stop
    EXPECT_TRUE(harness.acknowledger.acknowledged().empty());
    EXPECT_TRUE(harness.dead_letters->letters().empty());
}

TEST(WebhookNotifier, EventsMatchingNoSubscriptionAreAcknowledgedAtOnce) {
    WebhookReceiver receiver;
    Harness harness({subscription(1, receiver.url(), "orders")});
    harness.notifier->process(insert(10, "items"));
    EXPECT_EQ(harness.acknowledger.acknowledged(), std::vector<uint64_t>{10});
    EXPECT_EQ(receiver.count(), 0u);
}

TEST(WebhookNotifierSettings, DefaultsAndOneErrorPerBadSetting) {
    NotifierSettings defaults = notifier_settings_from(Config{});
    EXPECT_EQ(defaults.worker_count, 10u);
    EXPECT_EQ(defaults.client_timeout, 10s);
    EXPECT_EQ(defaults.max_queue_bytes, size_t(100) << 20);
    EXPECT_FALSE(defaults.strict);
    EXPECT_EQ(defaults.backoff.kind, BackoffSettings::Kind::kExponential);
    EXPECT_EQ(defaults.backoff.max_retries, 15u);

    NotifierSettings set =
        notifier_settings_from(Config({{"PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT", "3"},
                                       {"PGSTREAM_WEBHOOK_NOTIFIER_BACKOFF_INTERVAL", "2s"},
                                       {"PGSTREAM_WEBHOOK_NOTIFIER_BACKOFF_MAX_RETRIES", "4"},
                                       {"PGSTREAM_WEBHOOK_NOTIFIER_STRICT", "true"}}));
    EXPECT_EQ(set.worker_count, 3u);
    EXPECT_EQ(set.backoff.kind, BackoffSettings::Kind::kConstant);
    EXPECT_EQ(set.backoff.delayBeforeRetry(4), std::chrono::milliseconds(2000));
    EXPECT_FALSE(set.backoff.delayBeforeRetry(5));
    EXPECT_TRUE(set.strict);

    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT", "0"},
             {"PGSTREAM_WEBHOOK_NOTIFIER_CLIENT_TIMEOUT", "soon"},
             {"PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES", "0"},
             {"PGSTREAM_WEBHOOK_NOTIFIER_STRICT", "maybe"}}) {
        try {
            notifier_settings_from(Config(std::map<std::string, std::string>{{key, value}}));
            ADD_FAILURE() << key << "=" << value << " accepted";
        } catch (const ConfigError& e) {
            EXPECT_EQ(e.key(), key);
        }
    }
}

TEST(WebhookModule, TheYamlSectionMapsOntoTheWebhookKeys) {
    register_builtin_modules();
    auto values = Config::parse_yaml(
        "target:\n  webhooks:\n    subscriptions:\n      store:\n        url: postgres://db\n"
        "        cache:\n          enabled: true\n      server:\n        address: 127.0.0.1:9900\n"
        "    notifier:\n      worker_count: 4\n      strict: true\n",
        "w.yaml");
    EXPECT_EQ(values["PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL"], "postgres://db");
    EXPECT_EQ(values["PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_CACHE_ENABLED"], "true");
    EXPECT_EQ(values["PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS"], "127.0.0.1:9900");
    EXPECT_EQ(values["PGSTREAM_WEBHOOK_NOTIFIER_WORKER_COUNT"], "4");
    EXPECT_EQ(values["PGSTREAM_WEBHOOK_NOTIFIER_STRICT"], "true");
}
