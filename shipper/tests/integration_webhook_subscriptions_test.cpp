// The webhook subscription server and store against a real PostgreSQL 15 (pgstream.webhook_subscriptions from
// the embedded migrations) and a real HTTP client: the API, its refusals (400, 401, 413, 503, SSRF) and the
// SubscriptionSource the notifier reads (SQL-made subscriptions count; cache on and off).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

#include "cli/embedded_migrations.h"
#include "support/pg_cluster.h"
#include "support/process.h"
#include "wal/json.h"
#include "webhooks/subscription_server.h"
#include "webhooks/subscription_store.h"

namespace pgstream_it {
namespace {

using namespace pgstream::webhooks;
using pgstream::AddressPolicy;
using pgstream::JsonValue;
using pgstream::Network;

constexpr auto kWait = std::chrono::seconds(10);

std::vector<Network> networks(std::initializer_list<const char*> cidrs) {
    std::vector<Network> parsed;
    for (const char* cidr : cidrs) parsed.push_back(*Network::parse(cidr));
    return parsed;
}

class WebhookSubscriptionsTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        cluster_ = new PgCluster();
        PgConnection db(cluster_->url());
        db.exec("CREATE SCHEMA IF NOT EXISTS pgstream");
        for (const auto& migration : pgstream::cli::embedded_migrations()) db.exec(migration.sql);
    }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }
    void SetUp() override { cluster_->exec("TRUNCATE pgstream.webhook_subscriptions"); }
    void TearDown() override {
        if (server_) server_->stop();
    }

    // Starts a server on an ephemeral loopback port; `allowed` are the networks webhook URLs may be on.
    void start_server(std::string token = {}, std::vector<Network> allowed = {},
                      std::chrono::milliseconds read_timeout = std::chrono::seconds(5)) {
        SubscriptionServerSettings settings;
        settings.address = "127.0.0.1:0";
        settings.read_timeout = read_timeout;
        settings.token = std::move(token);
        store_ = std::make_shared<SubscriptionStore>(cluster_->url());
        server_ = std::make_unique<SubscriptionServer>(settings, store_, AddressPolicy(std::move(allowed)),
                                                       [this] { ++changes_; });
        port_ = server_->start();
        client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
        client_->set_read_timeout(10, 0);
    }

    httplib::Result post(const std::string& path, const std::string& body, const std::string& token = {}) {
        httplib::Headers headers;
        if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
        return client_->Post(path.c_str(), headers, body, "application/json");
    }
    httplib::Result subscribe(const std::string& body, const std::string& token = {}) {
        return post("/webhooks/subscribe", body, token);
    }
    httplib::Result list(const std::string& token = {}) {
        httplib::Headers headers;
        if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
        return client_->Get("/webhooks/subscriptions", headers);
    }
    // The subscriptions GET /webhooks/subscriptions answers with.
    std::vector<JsonValue> listed(const std::string& token = {}) {
        auto response = list(token);
        if (!response || response->status != 200)
            throw std::runtime_error("GET /webhooks/subscriptions failed");
        return pgstream::parse_json(response->body).find("subscriptions")->items;
    }
    std::string rows() {
        return cluster_->scalar_text("SELECT count(*) FROM pgstream.webhook_subscriptions");
    }

    static PgCluster* cluster_;
    std::shared_ptr<SubscriptionStore> store_;
    std::unique_ptr<SubscriptionServer> server_;
    std::unique_ptr<httplib::Client> client_;
    int port_ = 0;
    std::atomic<int> changes_{0};
};

PgCluster* WebhookSubscriptionsTest::cluster_ = nullptr;

// An error answer: the status and a JSON {"error": "..."} body.
void expect_error(const httplib::Result& response, int status, const std::string& mentions = {}) {
    ASSERT_TRUE(response) << "no response";
    EXPECT_EQ(response->status, status) << response->body;
    JsonValue body = pgstream::parse_json(response->body);
    ASSERT_NE(body.find("error"), nullptr) << response->body;
    EXPECT_NE(body.find("error")->text.find(mentions), std::string::npos) << response->body;
}

TEST_F(WebhookSubscriptionsTest, SubscribeListUpsertAndUnsubscribe) {
    start_server();
    auto created = subscribe(
        R"({"url":"https://1.1.1.1/hook","schema":"public","table":"orders","event_types":["U","I","I"],"secret":"whsec_c2VjcmV0"})");
    ASSERT_TRUE(created);
    EXPECT_EQ(created->status, 201) << created->body;
    JsonValue first = pgstream::parse_json(created->body);
    EXPECT_EQ(first.find("created")->text, "true");
    EXPECT_EQ(first.find("secret"), nullptr) << "never printed back";
    EXPECT_EQ(first.find("secret_set")->text, "true");
    const std::string id = first.find("id")->text;
    EXPECT_EQ(cluster_->scalar_text(
                  "SELECT event_types::text || ' ' || secret FROM pgstream.webhook_subscriptions"),
              "{I,U} whsec_c2VjcmV0");

    // The same (url, schema, table) again: an update of the one row, still answered 201.
    auto updated =
        subscribe(R"({"url":"https://1.1.1.1/hook","schema":"public","table":"orders","event_types":["D"]})");
    ASSERT_TRUE(updated);
    EXPECT_EQ(updated->status, 201) << updated->body;
    JsonValue second = pgstream::parse_json(updated->body);
    EXPECT_EQ(second.find("created")->text, "false");
    EXPECT_EQ(second.find("id")->text, id);
    EXPECT_EQ(rows(), "1");

    // Another table of the same URL is another subscription; empty schema/table/event types mean all.
    auto everything = subscribe(R"({"url":"https://1.1.1.1/hook"})");
    ASSERT_TRUE(everything);
    EXPECT_EQ(everything->status, 201);
    auto subscriptions = listed();
    ASSERT_EQ(subscriptions.size(), 2u);
    EXPECT_EQ(subscriptions[0].find("id")->text, id);
    EXPECT_EQ(subscriptions[0].find("event_types")->to_json(), R"(["D"])");
    EXPECT_EQ(subscriptions[0].find("secret_set")->text, "false") << "an update without a secret removes it";
    EXPECT_EQ(subscriptions[1].find("schema")->text, "");
    EXPECT_EQ(list()->body.find("whsec_"), std::string::npos);
    EXPECT_EQ(changes_.load(), 3);

    auto removed =
        post("/webhooks/unsubscribe", R"({"url":"https://1.1.1.1/hook","schema":"public","table":"orders"})");
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->status, 200);
    EXPECT_EQ(removed->body, R"({"removed":true})");
    EXPECT_EQ(rows(), "1");
    EXPECT_EQ(listed().size(), 1u);
    auto again =
        post("/webhooks/unsubscribe", R"({"url":"https://1.1.1.1/hook","schema":"public","table":"orders"})");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 200);
    EXPECT_EQ(again->body, R"({"removed":false})");
    EXPECT_EQ(changes_.load(), 4);
}

// Everything written to stderr (where the logger writes) while `body` runs.
std::string stderr_during(const std::function<void()>& body) {
    char path[] = "/tmp/pgstream-webhook-log-XXXXXX";
    int file = mkstemp(path);
    if (file < 0) throw std::runtime_error("mkstemp failed");
    std::fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    {
        ScopeExit restore([&] {
            std::fflush(stderr);
            dup2(saved, STDERR_FILENO);
            close(saved);
            close(file);
        });
        body();
    }
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    unlink(path);
    return text.str();
}

TEST_F(WebhookSubscriptionsTest, NoSecretReachesTheLog) {
    std::string logged = stderr_during([&] {
        start_server("tok-3f9a77");
        subscribe(R"({"url":"https://1.1.1.1/services/T0/B0/path-secret-1","secret":"whsec_sig-secret-2"})",
                  "tok-3f9a77");
        subscribe(R"({"url":"https://1.1.1.1/x"})", "tok-wrong-5d1e");
        post("/webhooks/unsubscribe", R"({"url":"https://1.1.1.1/services/T0/B0/path-secret-1"})",
             "tok-3f9a77");
        // A store whose URL carries a password, unreachable.
        auto store = std::make_shared<SubscriptionStore>(
            "postgres://app:pw-secret-4@127.0.0.1:" + std::to_string(refused_port()) + "/postgres");
        EXPECT_THROW(store->list(), StoreUnavailable);
        EXPECT_EQ(store->readiness().find("pw-secret-4"), std::string::npos) << store->readiness();
    });
    EXPECT_NE(logged.find("created subscription"), std::string::npos) << "the log was captured: " << logged;
    EXPECT_NE(logged.find("webhook subscription store"), std::string::npos) << logged;
    for (const char* secret :
         {"tok-3f9a77", "tok-wrong-5d1e", "path-secret-1", "whsec_sig-secret-2", "pw-secret-4"})
        EXPECT_EQ(logged.find(secret), std::string::npos) << secret << " in: " << logged;
}

TEST_F(WebhookSubscriptionsTest, BadBodiesAreAnswered400AndLargeOnes413WithAJsonError) {
    start_server();
    expect_error(subscribe("not json"), 400, "not JSON");
    expect_error(subscribe(R"(["https://1.1.1.1/"])"), 400, "object");
    expect_error(subscribe(R"({"schema":"public"})"), 400, "url is required");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","event_types":["I","X"]})"), 400, "event_types");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","event_types":"I"})"), 400, "event_types");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","schema":5})"), 400, "schema must be a string");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","secrte":"x"})"), 400, "unknown field \"secrte\"");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","secret":""})"), 400, "secret");
    expect_error(subscribe(R"({"url":"ftp://1.1.1.1/x"})"), 400, "http or https");
    expect_error(subscribe(R"({"url":"1.1.1.1/x"})"), 400, "absolute");
    expect_error(subscribe(R"({"url":"https://user:pw@1.1.1.1/x"})"), 400, "credentials");
    expect_error(subscribe(R"({"url":"https://1.1.1.1:99999/x"})"), 400, "port");
    expect_error(post("/webhooks/unsubscribe", "{"), 400, "not JSON");
    expect_error(client_->Get("/webhooks/nothing"), 404, "not found");
    EXPECT_EQ(rows(), "0");
    EXPECT_EQ(changes_.load(), 0);

    // Over the 64 KiB limit.
    std::string padding(70 * 1024, 'a');
    expect_error(subscribe(R"({"url":"https://1.1.1.1/","table":")" + padding + "\"}"), 413, "larger than");
    EXPECT_EQ(rows(), "0");
    // Just under the limit is served.
    std::string fits(60 * 1024, 'a');
    auto accepted = subscribe(R"({"url":"https://1.1.1.1/","table":")" + fits + "\"}");
    ASSERT_TRUE(accepted);
    EXPECT_EQ(accepted->status, 201);
}

TEST_F(WebhookSubscriptionsTest, AClientThatStopsSendingIsCutOffAfterTheReadTimeout) {
    start_server({}, {}, std::chrono::milliseconds(300));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    ScopeExit close_socket([fd] { close(fd); });
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    // Headers announce a body that never comes.
    const std::string partial =
        "POST /webhooks/subscribe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"url\":";
    ASSERT_EQ(send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
    const auto started = std::chrono::steady_clock::now();
    // Whatever the server answers (httplib says 400), it closes the connection: read until EOF.
    std::string answer;
    for (;;) {
        pollfd ready{fd, POLLIN, 0};
        ASSERT_EQ(poll(&ready, 1, 5000), 1) << "the server kept the connection open";
        char buffer[512];
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        answer.append(buffer, static_cast<size_t>(got));
    }
    EXPECT_EQ(answer.find(" 201 "), std::string::npos) << answer;
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3));
    EXPECT_EQ(rows(), "0");
}

TEST(WebhookSubscriptionServer, AStopRightAfterTheStartEndsTheServer) {
    // httplib's stop() does nothing until its accept loop runs: a stop that came first would leave the loop
    // running and the join waiting forever.
    // No request is made: the store is never used.
    auto store = std::make_shared<SubscriptionStore>("postgres://127.0.0.1:1/unused");
    SubscriptionServerSettings settings;
    settings.address = "127.0.0.1:0";
    for (int round = 0; round < 100; ++round) {
        // Leaked when it hangs: the stuck thread must not outlive what it uses.
        auto* server = new SubscriptionServer(settings, store, AddressPolicy());
        server->start();
        auto stopped = std::make_shared<std::promise<void>>();
        std::thread([server, stopped] {
            server->stop();
            stopped->set_value();
        }).detach();
        ASSERT_EQ(stopped->get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready)
            << "stop() hung in round " << round;
        delete server;
    }
}

TEST_F(WebhookSubscriptionsTest, WithATokenEveryRequestNeedsIt) {
    start_server("correct-horse");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/"})"), 401, "token");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/"})", "correct-horsf"), 401, "token");
    expect_error(subscribe(R"({"url":"https://1.1.1.1/"})", "correct-hors"), 401, "token");
    expect_error(list(), 401, "token");
    expect_error(list("wrong"), 401, "token");
    httplib::Headers basic{{"Authorization", "Basic Y29ycmVjdC1ob3JzZQ=="}};
    expect_error(client_->Get("/webhooks/subscriptions", basic), 401, "token");
    EXPECT_EQ(rows(), "0");

    auto accepted = subscribe(R"({"url":"https://1.1.1.1/"})", "correct-horse");
    ASSERT_TRUE(accepted);
    EXPECT_EQ(accepted->status, 201);
    EXPECT_EQ(listed("correct-horse").size(), 1u);
    // The scheme's case does not matter; the token's does.
    httplib::Headers lower_case_scheme{{"Authorization", "bearer correct-horse"}};
    auto listed_again = client_->Get("/webhooks/subscriptions", lower_case_scheme);
    ASSERT_TRUE(listed_again);
    EXPECT_EQ(listed_again->status, 200);
    expect_error(list("Correct-horse"), 401, "token");
    auto removed = post("/webhooks/unsubscribe", R"({"url":"https://1.1.1.1/"})", "correct-horse");
    ASSERT_TRUE(removed);
    EXPECT_EQ(removed->status, 200);
}

TEST_F(WebhookSubscriptionsTest, UrlsOnNonPublicAddressesAreRefusedUnlessTheirNetworkIsAllowed) {
    start_server();
    for (const char* url :
         {"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://169.254.169.254/latest/meta-data",
          "http://localhost:9000/", "https://10.1.2.3/", "http://192.168.0.10/", "http://0.0.0.0/",
          "http://224.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/"}) {
        SCOPED_TRACE(url);
        expect_error(subscribe(std::string(R"({"url":")") + url + "\"}"), 400, "address");
    }
    expect_error(subscribe(R"({"url":"http://169.254.169.254/"})"), 400, "link-local");
    expect_error(subscribe(R"({"url":"http://127.0.0.1/"})"), 400, "PGSTREAM_WEBHOOK_ALLOWED_NETWORKS");
    expect_error(subscribe(R"({"url":"http://no-such-host.invalid/"})"), 400, "does not resolve");
    EXPECT_EQ(rows(), "0");

    // Allowed networks, and only those.
    server_->stop();
    start_server({}, networks({"127.0.0.0/8", "::1/128", "10.0.0.0/8"}));
    for (const char* url :
         {"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://localhost:9000/", "https://10.1.2.3/"}) {
        SCOPED_TRACE(url);
        auto accepted = subscribe(std::string(R"({"url":")") + url + "\"}");
        ASSERT_TRUE(accepted);
        EXPECT_EQ(accepted->status, 201) << accepted->body;
    }
    // Only the networks listed.
    expect_error(subscribe(R"({"url":"http://169.254.169.254/"})"), 400, "link-local");
    expect_error(subscribe(R"({"url":"http://192.168.0.10/"})"), 400, "private");
    EXPECT_EQ(rows(), "4");
}

TEST_F(WebhookSubscriptionsTest, AStoreThatIsDownIsAnswered503AndReportedUntilItIsBack) {
    start_server();
    StoreSubscriptionSource source(store_, SubscriptionStoreSettings{cluster_->url(), false, {}});
    ASSERT_EQ(subscribe(R"({"url":"https://1.1.1.1/a"})")->status, 201);
    ASSERT_NE(source.current(), nullptr);
    EXPECT_EQ(source.readiness(), "");

    cluster_->stop();
    expect_error(subscribe(R"({"url":"https://1.1.1.1/b"})"), 503, "webhook_subscriptions");
    expect_error(list(), 503);
    expect_error(post("/webhooks/unsubscribe", R"({"url":"https://1.1.1.1/a"})"), 503);
    EXPECT_NE(store_->readiness(), "");
    EXPECT_NE(source.readiness(), "");
    // The last list read stays in force.
    auto last = source.current();
    ASSERT_NE(last, nullptr);
    EXPECT_EQ(last->size(), 1u);
    EXPECT_EQ(changes_.load(), 1);

    cluster_->start();
    auto accepted = subscribe(R"({"url":"https://1.1.1.1/b"})");
    ASSERT_TRUE(accepted);
    EXPECT_EQ(accepted->status, 201) << accepted->body;
    EXPECT_EQ(store_->readiness(), "");
    EXPECT_TRUE(wait_until([&] { return source.current() && source.current()->size() == 2; }, kWait));
    EXPECT_EQ(source.readiness(), "");
}

TEST_F(WebhookSubscriptionsTest, WithoutCacheASubscriptionMadeBySqlCountsAtTheNextRead) {
    auto store = std::make_shared<SubscriptionStore>(cluster_->url());
    StoreSubscriptionSource source(store, SubscriptionStoreSettings{cluster_->url(), false, {}});
    source.start();
    auto before = source.current();
    ASSERT_NE(before, nullptr);
    EXPECT_TRUE(before->empty());
    cluster_->exec(
        "INSERT INTO pgstream.webhook_subscriptions (url, schema_name, event_types, secret) "
        "VALUES ('https://1.1.1.1/sql', 'public', '{I,D}', 's3')");
    auto after = source.current();
    ASSERT_NE(after, nullptr);
    ASSERT_EQ(after->size(), 1u);
    const Subscription& made = after->front();
    EXPECT_EQ(made.url, "https://1.1.1.1/sql");
    EXPECT_EQ(made.schema, "public");
    EXPECT_EQ(made.table, "");
    EXPECT_EQ(made.event_types, (std::vector<std::string>{"I", "D"}));
    EXPECT_EQ(made.secret, std::optional<std::string>("s3"));
    EXPECT_GT(made.id, 0);
}

TEST_F(WebhookSubscriptionsTest, WithCacheSqlSubscriptionsCountAfterTheRefresh) {
    auto store = std::make_shared<SubscriptionStore>(cluster_->url());
    SubscriptionStoreSettings settings{cluster_->url(), true, std::chrono::milliseconds(300)};
    StoreSubscriptionSource source(store, settings);
    source.start();
    ASSERT_TRUE(wait_until([&] { return source.current() != nullptr; }, kWait));
    EXPECT_TRUE(source.current()->empty());
    EXPECT_EQ(source.readiness(), "");
    const uint64_t reads_before = source.reads();
    cluster_->exec("INSERT INTO pgstream.webhook_subscriptions (url) VALUES ('https://1.1.1.1/sql')");
    ASSERT_TRUE(wait_until([&] { return source.current()->size() == 1; }, kWait));
    EXPECT_GT(source.reads(), reads_before) << "seen through a refresh, not a read per call";
    // current() itself never reads with the cache on.
    const uint64_t reads_now = source.reads();
    for (int i = 0; i < 100; ++i) source.current();
    EXPECT_LE(source.reads(), reads_now + 1);
}

TEST_F(WebhookSubscriptionsTest, WithCacheAChangeThroughTheServerIsReadAtOnce) {
    start_server();
    SubscriptionStoreSettings settings{cluster_->url(), true, std::chrono::hours(1)};
    StoreSubscriptionSource source(store_, settings);
    source.start();
    ASSERT_TRUE(wait_until([&] { return source.current() != nullptr; }, kWait));
    // What SQL does waits for the (hour-long) interval...
    cluster_->exec("INSERT INTO pgstream.webhook_subscriptions (url) VALUES ('https://1.1.1.1/sql')");
    EXPECT_EQ(source.current()->size(), 0u);
    // ...what the server does is read at once (the module wires on_change to invalidate()).
    source.invalidate();
    ASSERT_TRUE(wait_until([&] { return source.current()->size() == 1; }, kWait));
}

TEST(WebhookSubscriptionSource, ACacheThatNeverReadReportsItAndHasNoList) {
    const int port = refused_port();
    const std::string url = "postgres://pgstream:hunter2@127.0.0.1:" + std::to_string(port) + "/postgres";
    auto store = std::make_shared<SubscriptionStore>(url);
    StoreSubscriptionSource source(store,
                                   SubscriptionStoreSettings{url, true, std::chrono::milliseconds(100)});
    source.start();
    ASSERT_TRUE(wait_until([&] { return !store->readiness().empty(); }, kWait));
    EXPECT_EQ(source.current(), nullptr) << "unknown, not an empty list";
    EXPECT_NE(source.readiness(), "");
    EXPECT_EQ(source.readiness().find("hunter2"), std::string::npos) << source.readiness();
    source.stop();
}

}  // namespace
}  // namespace pgstream_it
