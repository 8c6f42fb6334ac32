// The webhook notifier end to end: `pgstream run` streaming a real PostgreSQL 15 cluster to cpp-httplib
// receivers in this process (127.0.0.1, allowed through PGSTREAM_WEBHOOK_ALLOWED_NETWORKS), subscriptions
// made by SQL in pgstream.webhook_subscriptions.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "support/stream_fixture.h"
#include "support/webhook_receiver.h"

using namespace pgstream_it;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// How long a receiver stays down in the outage test: the 30 s, the workload committing all along.
constexpr auto kOutage = 30s;
constexpr const char* kStandardSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

Settings webhook_settings(const PgCluster& cluster) {
    Settings settings = shipper_settings(cluster);
    settings.erase("PGSTREAM_STDOUT_WRITER_ENABLED");
    settings["PGSTREAM_WEBHOOK_SUBSCRIPTION_STORE_URL"] = cluster.url();
    settings["PGSTREAM_WEBHOOK_ALLOWED_NETWORKS"] = "127.0.0.1/32";
    settings["PGSTREAM_WEBHOOK_SUBSCRIPTION_SERVER_ADDRESS"] = "127.0.0.1:" + std::to_string(refused_port());
    settings["PGSTREAM_WEBHOOK_NOTIFIER_EXP_BACKOFF_INITIAL_INTERVAL"] = "50ms";
    settings["PGSTREAM_WEBHOOK_NOTIFIER_EXP_BACKOFF_MAX_INTERVAL"] = "400ms";
    settings["PGSTREAM_CHECKPOINT_INTERVAL"] = "100ms";
    return settings;
}

void subscribe(PgConnection& db, const std::string& url, const std::string& schema, const std::string& table,
               const std::string& event_types, const std::string& secret = "") {
    db.exec(
        "INSERT INTO pgstream.webhook_subscriptions (url, schema_name, table_name, event_types, secret) "
        "VALUES ('" +
        url + "', '" + schema + "', '" + table + "', '" + event_types + "', " +
        (secret.empty() ? std::string("NULL") : "'" + secret + "'") + ")");
}

// The event a webhook carries: its body is {"Data": <event>}.
OutputEvent event_of(const ReceivedWebhook& webhook) {
    const std::string prefix = "{\"Data\":";
    EXPECT_EQ(webhook.body.rfind(prefix, 0), 0u) << webhook.body;
    std::string error;
    auto event =
        parse_event(webhook.body.substr(prefix.size(), webhook.body.size() - prefix.size() - 1), &error);
    EXPECT_TRUE(event) << error << ": " << webhook.body;
    return event.value_or(OutputEvent{});
}

// "I public.items 3" for each data event delivered (2xx), in arrival order; schema changes left out.
std::vector<std::string> delivered_changes(const WebhookReceiver& receiver) {
    std::vector<std::string> changes;
    for (const auto& webhook : receiver.delivered()) {
        OutputEvent event = event_of(webhook);
        if (event.is_schema_log()) continue;
        auto id = event.action == "D" ? event.identity_value("id") : event.value("id");
        changes.push_back(event.action + " " + event.schema + "." + event.table + " " + id.value_or("?"));
    }
    return changes;
}

size_t delivered_data_events(const WebhookReceiver& receiver) {
    return delivered_changes(receiver).size();
}

std::string hmac_base64(const std::string& key, const std::string& content) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(content.data()),
         content.size(), mac, &length);
    std::string out(4 * ((length + 2) / 3), '\0');
    out.resize(size_t(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), mac, int(length))));
    return out;
}

std::string base64_decoded(const std::string& text) {
    std::string out(text.size(), '\0');
    int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                 reinterpret_cast<const unsigned char*>(text.data()), int(text.size()));
    size_t padding = std::count(text.end() - 2, text.end(), '=');
    out.resize(size_t(length) - padding);
    return out;
}

// Verifies the Standard Webhooks headers of every delivery with `key`, independently of the shipper's code.
void expect_signed(const WebhookReceiver& receiver, const std::string& key) {
    for (const auto& webhook : receiver.delivered()) {
        const std::string id = webhook.header("webhook-id");
        const std::string timestamp = webhook.header("webhook-timestamp");
        EXPECT_EQ(id, webhook.header("idempotency-key"));
        ASSERT_FALSE(timestamp.empty());
        EXPECT_LE(std::abs(std::stoll(timestamp) - int64_t(std::time(nullptr))), 300);
        EXPECT_EQ(webhook.header("webhook-signature"),
                  "v1," + hmac_base64(key, id + "." + timestamp + "." + webhook.body))
            << webhook.body;
    }
}

// Commits rows 1..count into public.items from a connection of its own, row i at start + every × (i - 1): a
// workload that keeps going while the test watches or disturbs the shipper.
class PacedItemWriter {
  public:
    PacedItemWriter(std::string url, int count, std::chrono::milliseconds every)
        : start_(Clock::now()), thread_([this, url = std::move(url), count, every] {
              try {
                  PgConnection conn(url);
                  for (int i = 1; i <= count; ++i) {
                      std::this_thread::sleep_until(start_ + every * (i - 1));
                      conn.exec("INSERT INTO public.items VALUES (" + std::to_string(i) + ", 0)");
                  }
              } catch (const std::exception& e) {
                  error_ = e.what();
              }
          }) {}
    ~PacedItemWriter() { join(); }
    PacedItemWriter(const PacedItemWriter&) = delete;
    PacedItemWriter& operator=(const PacedItemWriter&) = delete;

    Clock::time_point start() const { return start_; }
    // Waits for the last row; returns the writer's error, "" when every row was committed.
    std::string join() {
        if (thread_.joinable()) thread_.join();
        return error_;
    }

  private:
    const Clock::time_point start_;
    std::string error_;
    std::thread thread_;
};

// One cluster for the whole suite (its start-up is most of a test's time); each test streams its own slot,
// made after the previous test's tables and subscriptions were dropped, so it sees only its own changes.
class IntegrationWebhooks : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new PgCluster(); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    void prepare(const std::string& tables_sql) {
        db = std::make_unique<PgConnection>(cluster().url());
        db->exec(
            "SET client_min_messages = warning; DROP SCHEMA IF EXISTS shop CASCADE; DROP TABLE IF EXISTS "
            "public.items");
        const std::string slot =
            std::string("webhooks_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::string lower;
        for (char c : slot) lower += char(std::tolower(static_cast<unsigned char>(c)));
        slot_ = lower.substr(0, 60);
        init_stream(cluster(), slot_);
        db->exec("DELETE FROM pgstream.webhook_subscriptions; DELETE FROM pgstream.webhook_dead_letters");
        db->exec(tables_sql);
    }
    static PgCluster& cluster() { return *cluster_; }
    Settings settings() {
        Settings settings = webhook_settings(cluster());
        settings["PGSTREAM_POSTGRES_LISTENER_SLOT_NAME"] = slot_;
        return settings;
    }
    void start(Settings settings) {
        shipper = std::make_unique<ShipperProcess>(work.path(), std::move(settings));
        shipper->start();
        ASSERT_TRUE(wait_until([&] { return slot_state(*db, slot_).active; }, 30s))
            << shipper_diagnostics(*shipper);
    }
    // public.items, with `receiver` subscribed to it and answering 400 for the row with id 3.
    void subscribe_refusing_row_3(WebhookReceiver& receiver) {
        prepare("CREATE TABLE public.items (id int PRIMARY KEY, n int)");
        receiver.set_answer([](const ReceivedWebhook& webhook) {
            return event_of(webhook).value("id") == "3" ? WebhookAnswer{400, ""} : WebhookAnswer{};
        });
        subscribe(*db, receiver.url(), "public", "items", "{}");
    }
    void insert_items(int count) {
        for (int i = 1; i <= count; ++i)
            db->exec("INSERT INTO public.items VALUES (" + std::to_string(i) + ", 0)");
    }
    uint64_t current_lsn() { return parse_lsn(db->scalar_text("SELECT pg_current_wal_lsn()")); }
    uint64_t confirmed() { return slot_state(*db, slot_).confirmed_flush_lsn; }
    bool confirmed_past(uint64_t lsn, std::chrono::milliseconds timeout) {
        return wait_until([&] { return confirmed() >= lsn; }, timeout, 100ms);
    }
    bool slot_active() { return slot_state(*db, slot_).active; }

    std::unique_ptr<PgConnection> db;
    TempDir work;
    std::unique_ptr<ShipperProcess> shipper;

  private:
    static PgCluster* cluster_;
    std::string slot_;
};

PgCluster* IntegrationWebhooks::cluster_ = nullptr;

}  // namespace

TEST_F(IntegrationWebhooks, ThreeSubscribersReceiveExactlyTheirEventsInCommitOrderSigned) {
    prepare(
        "CREATE SCHEMA shop; CREATE TABLE public.items (id int PRIMARY KEY, n int); "
        "CREATE TABLE shop.orders (id int PRIMARY KEY, n int)");
    WebhookReceiver everything, shop_inserts, item_changes;
    subscribe(*db, everything.url(), "", "", "{}", kStandardSecret);
    subscribe(*db, shop_inserts.url(), "shop", "", "{I}");
    subscribe(*db, item_changes.url(), "public", "items", "{U,D}", "plain secret");
    start(settings());

    std::vector<std::string> all, shop, items;
    for (int i = 1; i <= 30; ++i) {
        std::string id = std::to_string(i);
        db->exec("INSERT INTO public.items VALUES (" + id + ", 0)");
        all.push_back("I public.items " + id);
        db->exec("INSERT INTO shop.orders VALUES (" + id + ", 0)");
        all.push_back("I shop.orders " + id);
        shop.push_back("I shop.orders " + id);
        if (i % 3 == 0) {
            db->exec("UPDATE public.items SET n = n + 1 WHERE id = " + id);
            all.push_back("U public.items " + id);
            items.push_back("U public.items " + id);
        }
        if (i % 5 == 0) {
            db->exec("DELETE FROM shop.orders WHERE id = " + id);
            all.push_back("D shop.orders " + id);
            db->exec("DELETE FROM public.items WHERE id = " + std::to_string(i - 1));
            all.push_back("D public.items " + std::to_string(i - 1));
            items.push_back("D public.items " + std::to_string(i - 1));
        }
    }
    const uint64_t end = current_lsn();
    ASSERT_TRUE(wait_until([&] { return delivered_data_events(everything) >= all.size(); }, 30s))
        << delivered_data_events(everything) << " of " << all.size() << "\n"
        << shipper_diagnostics(*shipper);
    ASSERT_TRUE(confirmed_past(end, 30s)) << shipper_diagnostics(*shipper);

    EXPECT_EQ(delivered_changes(everything), all);
    EXPECT_EQ(delivered_changes(shop_inserts), shop);
    EXPECT_EQ(delivered_changes(item_changes), items);
    // Schema changes reach the subscriptions whose filters they match, and only those.
    for (const auto& webhook : shop_inserts.delivered()) {
        OutputEvent event = event_of(webhook);
        if (event.is_schema_log()) {
            EXPECT_EQ(event.value("schema_name"), "shop") << webhook.body;
        }
    }
    EXPECT_EQ(item_changes.delivered().size(), items.size());

    expect_signed(everything, base64_decoded(std::string(kStandardSecret).substr(6)));
    expect_signed(item_changes, "plain secret");
    std::set<std::string> keys;
    for (const auto& webhook : shop_inserts.delivered()) {
        EXPECT_EQ(webhook.header("webhook-signature"), "");
        EXPECT_EQ(webhook.header("content-type"), "application/json");
        EXPECT_EQ(webhook.header("x-pgstream-lsn"), event_of(webhook).lsn);
        keys.insert(webhook.header("idempotency-key"));
    }
    EXPECT_EQ(keys.size(), shop_inserts.delivered().size()) << "one key per delivery";
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

TEST_F(IntegrationWebhooks, AReceiverDownForThirtySecondsGetsEverythingInOrderWithinTheMemoryBudget) {
    prepare("CREATE TABLE public.items (id int PRIMARY KEY, n int)");
    WebhookReceiver healthy, down;
    down.stop();  // connection refused until it listens again on the same port
    subscribe(*db, healthy.url(), "public", "items", "{}");
    subscribe(*db, down.url(), "public", "items", "{}");
    Settings settings = this->settings();
    settings["PGSTREAM_WEBHOOK_NOTIFIER_EXP_BACKOFF_MAX_RETRIES"] = "0";  // forever
    // A budget the outage's events fit in (about 3 KiB each held: event, payload, two deliveries), so that
    // the healthy receiver is not held back, yet small enough that their memory is a visible part of it.
    constexpr size_t kBudget = 4u << 20;
    settings["PGSTREAM_WEBHOOK_NOTIFIER_MAX_QUEUE_BYTES"] = std::to_string(kBudget);
    settings["PGSTREAM_HEALTH_CHECK_ENABLED"] = "true";
    settings["PGSTREAM_HEALTH_CHECK_ADDRESS"] = "127.0.0.1:0";
    settings["PGSTREAM_METRICS_PROMETHEUS_ENABLED"] = "true";
    start(settings);
    const int port = health_port(*shipper);
    ASSERT_GT(port, 0) << shipper_diagnostics(*shipper);
    const std::string used_series = "pgstream_target_memory_used{target=\"webhooks-notifier\"}";
    const std::string limit_series = "pgstream_target_memory_limit{target=\"webhooks-notifier\"}";
    EXPECT_EQ(scrape_metric(port, limit_series), double(kBudget));
    // RSS before any event: everything the process needs besides the queued events (connections, threads,
    // libcurl, the schema cache) is there already.
    const size_t rss_at_start = resident_bytes(shipper->pid());
    ASSERT_GT(rss_at_start, 0u);

    // The workload commits a row every 50 ms for the whole outage.
    constexpr auto kEvery = 50ms;
    const int rows = int(kOutage / kEvery);
    PacedItemWriter writer(cluster().url(), rows, kEvery);
    const auto outage_start = writer.start();
    std::vector<std::string> expected;
    for (int i = 1; i <= rows; ++i) expected.push_back("I public.items " + std::to_string(i));

    // During the outage: the slot is never confirmed up to the first undelivered commit, the memory guard
    // stays within its budget, and so does the process (RSS).
    uint64_t highest_confirmed = 0;
    double highest_used = 0;
    size_t highest_rss = 0;
    auto observe = [&] {
        highest_confirmed = std::max(highest_confirmed, confirmed());
        std::optional<double> used = scrape_metric(port, used_series);
        EXPECT_TRUE(used) << used_series << " missing from /metrics";
        highest_used = std::max(highest_used, used.value_or(0));
        highest_rss = std::max(highest_rss, resident_bytes(shipper->pid()));
    };
    wait_until(
        [&] {
            observe();
            return Clock::now() >= outage_start + kOutage;
        },
        kOutage + 10s, 200ms);
    const std::string writer_error = writer.join();
    ASSERT_TRUE(writer_error.empty()) << writer_error;
    const uint64_t end = current_lsn();

    // The healthy receiver was not held back: it has every row while the other is still down.
    ASSERT_TRUE(wait_until(
        [&] {
            observe();
            return delivered_data_events(healthy) >= size_t(rows);
        },
        15s))
        << delivered_data_events(healthy) << " of " << rows << "\n"
        << shipper_diagnostics(*shipper);
    observe();  // every row taken now, none acknowledged
    EXPECT_EQ(delivered_changes(healthy), expected);
    EXPECT_EQ(down.count(), 0u);
    const uint64_t first_commit = parse_lsn(event_of(healthy.delivered().front()).commit_lsn);
    EXPECT_LT(highest_confirmed, first_commit)
        << "confirmed " << format_lsn(highest_confirmed) << " passes the undelivered commit "
        << format_lsn(first_commit);
    // The guard held the undelivered events (at least their payloads), and no more than its budget.
    size_t smallest_payload = SIZE_MAX;
    for (const auto& webhook : healthy.delivered())
        smallest_payload = std::min(smallest_payload, webhook.body.size());
    const size_t payloads = smallest_payload * size_t(rows);
    EXPECT_GE(highest_used, double(payloads)) << "the guard did not count the queued events";
    EXPECT_LE(highest_used, double(kBudget));
    // RSS: what the outage adds is the queued events, which the guard counts, plus per-attempt transients and
    // allocator slack (malloc arenas of the HTTP and dispatcher threads): 16 MiB covers those with room,
    // and is a small fraction of what an unbounded queue of a longer outage would take.
    EXPECT_LE(highest_rss, rss_at_start + kBudget + (16u << 20))
        << "RSS " << highest_rss << " bytes, " << rss_at_start << " at the start";
    std::cout << "outage: guard peak " << highest_used << " bytes of " << kBudget << ", RSS " << rss_at_start
              << " -> " << highest_rss << " bytes" << std::endl;
    EXPECT_TRUE(shipper->running());

    down.start();
    ASSERT_TRUE(wait_until([&] { return delivered_data_events(down) >= size_t(rows); }, 30s))
        << shipper_diagnostics(*shipper);
    EXPECT_EQ(delivered_changes(down), expected);
    EXPECT_TRUE(confirmed_past(end, 15s)) << shipper_diagnostics(*shipper);
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

TEST_F(IntegrationWebhooks, KillNineAtThreeMomentsLosesNothingAndRepeatsKeys) {
    std::mt19937 rng = seeded_rng();
    prepare("CREATE TABLE public.items (id int PRIMARY KEY, n int)");
    WebhookReceiver all_changes, inserts;
    subscribe(*db, all_changes.url(), "", "items", "{}");
    subscribe(*db, inserts.url(), "public", "items", "{I}", kStandardSecret);
    Settings settings = this->settings();
    // The slot is confirmed every 2 s: a kill leaves delivered events unconfirmed, sent again after the
    // restart.
    settings["PGSTREAM_CHECKPOINT_INTERVAL"] = "2s";
    start(settings);

    constexpr int kRows = 300;
    constexpr auto kWriting = 6s;
    PacedItemWriter writer(cluster().url(), kRows, std::chrono::milliseconds(kWriting) / kRows);
    const auto write_start = writer.start();
    for (int lane = 0; lane < 3; ++lane) {
        auto at = std::chrono::duration<double>(0.5 + lane * 1.8 +
                                                std::uniform_real_distribution<double>(0, 1.2)(rng));
        std::this_thread::sleep_until(write_start + std::chrono::duration_cast<Clock::duration>(at));
        shipper->kill_hard();
        ASSERT_TRUE(wait_until([&] { return !slot_active(); }, 15s)) << "slot still active after SIGKILL";
        shipper->start();
    }
    const std::string writer_error = writer.join();
    ASSERT_TRUE(writer_error.empty()) << writer_error;
    const uint64_t end = current_lsn();
    ASSERT_TRUE(confirmed_past(end, 60s)) << shipper_diagnostics(*shipper);

    for (const WebhookReceiver* receiver : {&all_changes, &inserts}) {
        std::map<std::string, std::set<std::string>> keys_by_row;
        for (const auto& webhook : receiver->delivered()) {
            OutputEvent event = event_of(webhook);
            if (event.is_schema_log()) continue;
            keys_by_row[event.value("id").value_or("?")].insert(webhook.header("idempotency-key"));
        }
        EXPECT_EQ(keys_by_row.size(), size_t(kRows)) << "every row at least once";
        for (const auto& [id, keys] : keys_by_row) EXPECT_EQ(keys.size(), 1u) << "row " << id << ": one key";
        // Redeliveries happened, so the key check above compared real duplicates.
        EXPECT_GT(receiver->delivered().size(), size_t(kRows));
        std::cout << receiver->delivered().size() << " deliveries for " << kRows << " rows" << std::endl;
    }
    expect_signed(inserts, base64_decoded(std::string(kStandardSecret).substr(6)));
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

TEST_F(IntegrationWebhooks, APermanentErrorWritesADeadLetterAndTheStreamGoesOn) {
    WebhookReceiver receiver;
    subscribe_refusing_row_3(receiver);
    start(settings());
    insert_items(5);
    const uint64_t end = current_lsn();

    ASSERT_TRUE(confirmed_past(end, 30s)) << shipper_diagnostics(*shipper);
    EXPECT_EQ(delivered_changes(receiver),
              (std::vector<std::string>{"I public.items 1", "I public.items 2", "I public.items 4",
                                        "I public.items 5"}));
    ReceivedWebhook refused;
    for (const auto& webhook : receiver.received())
        if (webhook.answered == 400) refused = webhook;
    auto rows = db->query(
        "SELECT s.id = d.subscription_id, d.url, d.payload::text, d.lsn::text, d.idempotency_key, d.status, "
        "d.attempts, d.last_error FROM pgstream.webhook_dead_letters d JOIN pgstream.webhook_subscriptions s "
        "ON s.url = d.url");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0], "t");
    EXPECT_EQ(rows[0][1], receiver.url());
    EXPECT_EQ(rows[0][2], refused.body);
    EXPECT_EQ(rows[0][3], refused.header("x-pgstream-lsn"));
    EXPECT_EQ(rows[0][4], refused.header("idempotency-key"));
    EXPECT_EQ(rows[0][5], "400");
    EXPECT_EQ(rows[0][6], "1");
    EXPECT_NE(rows[0][7].value_or("").find("400"), std::string::npos);
    EXPECT_EQ(shipper->stop(), 0) << shipper->stderr_tail();
}

TEST_F(IntegrationWebhooks, StrictModeStopsWithoutAcknowledging) {
    WebhookReceiver receiver;
    subscribe_refusing_row_3(receiver);
    Settings settings = this->settings();
    settings["PGSTREAM_WEBHOOK_NOTIFIER_STRICT"] = "true";
    start(settings);
    insert_items(5);

    auto status = shipper->wait_exit(30s);
    ASSERT_TRUE(status) << "strict mode should stop the shipper\n" << shipper_diagnostics(*shipper);
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << shipper->stderr_tail();
    EXPECT_NE(shipper->stderr_text().find("strict mode"), std::string::npos) << shipper->stderr_tail();

    ReceivedWebhook refused;
    for (const auto& webhook : receiver.received())
        if (webhook.answered == 400) refused = webhook;
    ASSERT_FALSE(refused.body.empty());
    const uint64_t refused_commit = parse_lsn(event_of(refused).commit_lsn);
    EXPECT_LT(confirmed(), refused_commit) << "the refused event was acknowledged";
    EXPECT_EQ(delivered_changes(receiver),
              (std::vector<std::string>{"I public.items 1", "I public.items 2"}));
    EXPECT_EQ(db->scalar_text("SELECT count(*) FROM pgstream.webhook_dead_letters"), "0");
}
