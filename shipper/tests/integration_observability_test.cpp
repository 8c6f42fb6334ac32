// `pgstream run` observed from outside: a real Prometheus server scrapes its /metrics, /ready follows the
// PostgreSQL connection, and the OTLP exporter pushes to a real HTTP receiver.
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <mutex>

#include "support/prometheus_server.h"
#include "support/stream_fixture.h"

namespace pgstream_it {
namespace {

using namespace std::chrono_literals;

class IntegrationObservability : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { cluster_ = new PgCluster(); }
    static void TearDownTestSuite() {
        delete cluster_;
        cluster_ = nullptr;
    }

    Settings prepare(const std::string& name) {
        init_stream(*cluster_, name + "_slot");
        cluster_->exec("CREATE TABLE " + name + " (id int PRIMARY KEY, payload text NOT NULL)");
        Settings settings = shipper_settings(*cluster_, name + "_slot");
        settings["PGSTREAM_HEALTH_CHECK_ENABLED"] = "true";
        settings["PGSTREAM_HEALTH_CHECK_ADDRESS"] = "127.0.0.1:0";
        return settings;
    }

    static PgCluster* cluster_;
};

PgCluster* IntegrationObservability::cluster_ = nullptr;

TEST_F(IntegrationObservability, PrometheusScrapesTheReplicationLagOfTheSlot) {
    TempDir dir;
    Settings settings = prepare("prom");
    settings["PGSTREAM_METRICS_PROMETHEUS_ENABLED"] = "true";
    settings["PGSTREAM_FILTER_EXCLUDE_TABLES"] = "prom_noise";
    cluster_->exec("CREATE TABLE prom_noise (id int PRIMARY KEY)");
    ShipperProcess shipper(dir.path(), settings);
    shipper.start();
    int port = health_port(shipper);
    ASSERT_GT(port, 0) << shipper_diagnostics(shipper);
    cluster_->exec("INSERT INTO prom_noise VALUES (1), (2), (3)");
    cluster_->exec("INSERT INTO prom SELECT g, 'row ' || g FROM generate_series(1, 100) g");
    ASSERT_TRUE(wait_until([&] { return shipper.output_lines().size() >= 100; }, 30s))
        << shipper_diagnostics(shipper);

    // promtool accepts the exposition text as it is served.
    httplib::Client client("127.0.0.1", port);
    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    ASSERT_EQ(scrape->status, 200);
    write_file(dir.file("metrics.txt"), scrape->body);
    CommandResult lint = run_command({"sh", "-c", "promtool check metrics < " + dir.file("metrics.txt")});
    EXPECT_EQ(lint.exit_code, 0) << lint.describe() << "\n" << scrape->body;
    // Every insert the output took, schema_log rows included: as many as the output has insert lines.
    size_t insert_lines = 0;
    for (const auto& line : shipper.output_lines())
        if (line.find("\"action\":\"I\"") != std::string::npos) ++insert_lines;
    EXPECT_GE(insert_lines, 100u);
    EXPECT_NE(scrape->body.find("pgstream_target_events_total{action=\"insert\",target=\"stdout-writer\"} " +
                                std::to_string(insert_lines) + "\n"),
              std::string::npos)
        << insert_lines << "\n"
        << scrape->body;
    // The output's own instruments: each of those lines was delivered (recorded right after the write), and
    // its memory guard is observed.
    std::string delivered =
        "pgstream_target_event_outcomes_total{action=\"insert\",outcome=\"delivered\","
        "target=\"stdout-writer\"} " +
        std::to_string(insert_lines) + "\n";
    std::string body = scrape->body;
    EXPECT_TRUE(wait_until(
        [&] {
            auto again = client.Get("/metrics");
            body = again ? again->body : "";
            return body.find(delivered) != std::string::npos;
        },
        10s))
        << delivered << body;
    EXPECT_NE(body.find("pgstream_target_memory_limit{target=\"stdout-writer\"} 104857600\n"),
              std::string::npos)
        << body;
    // The rows of the excluded table were dropped by the filter, and counted so (the filter runs before the
    // output, so they were counted before the output's lines were written).
    EXPECT_NE(body.find("pgstream_filter_events_dropped_total{action=\"insert\"} 3\n"), std::string::npos)
        << body;

    PrometheusServer prometheus("127.0.0.1:" + std::to_string(port));
    std::string answer;
    bool found = wait_until(
        [&] {
            auto body = prometheus.query("pgstream_replication_lag{replication_slot=\"prom_slot\"}");
            answer = body.value_or("");
            return answer.find("\"result\":[{") != std::string::npos;
        },
        30s, 200ms);
    EXPECT_TRUE(found) << answer << "\n" << prometheus.targets();
    EXPECT_NE(answer.find("\"__name__\":\"pgstream_replication_lag\""), std::string::npos) << answer;
    EXPECT_EQ(shipper.stop(), 0) << shipper_diagnostics(shipper);
}

TEST_F(IntegrationObservability, ReadyFollowsThePostgresConnection) {
    TempDir dir;
    Settings settings = prepare("ready");
    settings["PGSTREAM_POSTGRES_LISTENER_RECONNECT_INITIAL_INTERVAL"] = "100ms";
    settings["PGSTREAM_POSTGRES_LISTENER_RECONNECT_MAX_INTERVAL"] = "500ms";
    ShipperProcess shipper(dir.path(), settings);
    shipper.start();
    int port = health_port(shipper);
    ASSERT_GT(port, 0) << shipper_diagnostics(shipper);
    httplib::Client client("127.0.0.1", port);
    auto status_of = [&](const std::string& path) {
        auto response = client.Get(path);
        return response ? response->status : -1;
    };
    EXPECT_EQ(status_of("/health"), 200);
    ASSERT_TRUE(wait_until([&] { return status_of("/ready") == 200; }, 30s)) << shipper_diagnostics(shipper);

    cluster_->stop();
    std::string body;
    ASSERT_TRUE(wait_until(
        [&] {
            auto response = client.Get("/ready");
            if (!response || response->status != 503) return false;
            body = response->body;
            return true;
        },
        30s))
        << shipper_diagnostics(shipper);
    EXPECT_NE(body.find("\"component\":\"postgres_source\""), std::string::npos) << body;
    EXPECT_EQ(status_of("/health"), 200) << "alive while not ready";

    cluster_->start();
    EXPECT_TRUE(wait_until([&] { return status_of("/ready") == 200; }, 60s)) << shipper_diagnostics(shipper);
    auto status = client.Get("/status");
    ASSERT_TRUE(status);
    EXPECT_NE(status->body.find("\"replication_slot\":\"ready_slot\""), std::string::npos) << status->body;
    EXPECT_EQ(shipper.stop(), 0) << shipper_diagnostics(shipper);
}

TEST_F(IntegrationObservability, OtlpExportReachesAReceiver) {
    std::mutex mutex;
    std::condition_variable arrived;
    std::vector<std::string> bodies;
    httplib::Server receiver;
    receiver.Post("/v1/metrics", [&](const httplib::Request& request, httplib::Response& response) {
        {
            std::lock_guard<std::mutex> lock(mutex);
            bodies.push_back(request.body);
        }
        arrived.notify_all();
        response.set_content("{}", "application/json");
    });
    int receiver_port = receiver.bind_to_any_port("127.0.0.1");
    std::thread serving([&] { receiver.listen_after_bind(); });
    ScopeExit stop_receiver([&] {
        receiver.stop();
        serving.join();
    });

    TempDir dir;
    Settings settings = prepare("otlp");
    settings["PGSTREAM_HEALTH_CHECK_ENABLED"] = "false";
    settings["PGSTREAM_METRICS_ENDPOINT"] = "127.0.0.1:" + std::to_string(receiver_port);
    settings["PGSTREAM_METRICS_COLLECTION_INTERVAL"] = "1s";
    ShipperProcess shipper(dir.path(), settings);
    shipper.start();
    cluster_->exec("INSERT INTO otlp VALUES (1, 'one')");
    std::unique_lock<std::mutex> lock(mutex);
    bool exported = arrived.wait_for(lock, 30s, [&] {
        for (const auto& body : bodies)
            if (body.find("\"name\":\"pgstream.replication.lag\"") != std::string::npos &&
                body.find("\"name\":\"pgstream.target.events\"") != std::string::npos)
                return true;
        return false;
    });
    EXPECT_TRUE(exported) << (bodies.empty() ? std::string("(nothing)") : bodies.back()) << "\n"
                          << shipper_diagnostics(shipper);
    EXPECT_NE(bodies.back().find("{\"key\":\"service.name\",\"value\":{\"stringValue\":\"pgstream\"}}"),
              std::string::npos);
    lock.unlock();
    EXPECT_EQ(shipper.stop(), 0) << shipper_diagnostics(shipper);
}

TEST_F(IntegrationObservability, BadObservabilitySettingsAreOneLineNamingTheSetting) {
    TempDir dir;
    Settings settings = prepare("badobs");
    for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"PGSTREAM_HEALTH_CHECK_ADDRESS", "nowhere"},
             {"PGSTREAM_METRICS_PROMETHEUS_ENDPOINT", "metrics"},
             {"PGSTREAM_METRICS_ENDPOINT", "grpc://collector:4317"},
             {"PGSTREAM_METRICS_COLLECTION_INTERVAL", "0s"}}) {
        Settings bad = settings;
        bad[key] = value;
        write_file(dir.file("bad.env"), [&] {
            std::string text;
            for (const auto& [k, v] : bad) text += k + "=" + v + "\n";
            return text;
        }());
        CommandResult result = run_pgstream({"run", "-c", dir.file("bad.env")});
        EXPECT_EQ(result.exit_code, 2) << key << ": " << result.describe();
        ASSERT_EQ(result.err_lines().size(), 1u) << result.describe();
        EXPECT_NE(result.err_lines()[0].find(key), std::string::npos) << result.describe();
    }
}

}  // namespace
}  // namespace pgstream_it
