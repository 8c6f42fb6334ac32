#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>

#include "config/config.h"
#include "observability/health_server.h"
#include "observability/instrumented_processor.h"
#include "observability/metrics.h"
#include "observability/output_metrics.h"
#include "processor/batching.h"

using namespace pgstream;

TEST(Metrics, PrometheusTextNamesInstrumentsAfterTheirOpenTelemetryNames) {
    Metrics metrics;
    metrics.counter("pgstream.output.events", "{event}", "Events delivered", {{"target", "stdout-writer"}})
        .Increment(3);
    metrics.gauge("pgstream.replication.lag", "By", "Bytes behind", {{"replication_slot", "s1"}}).Set(42);
    metrics
        .histogram("pgstream.target.processing.latency", "s", "Time in the output",
                   Metrics::latency_buckets(), {{"target", "stdout-writer"}})
        .Observe(0.002);
    std::string text = metrics.prometheus_text();
    EXPECT_NE(text.find("pgstream_output_events_total{target=\"stdout-writer\"} 3"), std::string::npos)
        << text;
    EXPECT_NE(text.find("pgstream_replication_lag{replication_slot=\"s1\"} 42"), std::string::npos) << text;
    EXPECT_NE(text.find("pgstream_target_processing_latency_count{target=\"stdout-writer\"} 1"),
              std::string::npos)
        << text;
    ASSERT_NE(metrics.describe("pgstream_output_events_total"), nullptr);
    EXPECT_EQ(metrics.describe("pgstream_output_events_total")->name, "pgstream.output.events");
    EXPECT_EQ(metrics.describe("pgstream_replication_lag")->unit, "By");
}

TEST(Metrics, ObservableInstrumentsAreRefreshedAtEveryCollection) {
    Metrics metrics;
    auto& gauge = metrics.gauge("pgstream.memory.guard.bytes", "By", "Bytes held");
    double current = 7;
    metrics.on_collect([&] { gauge.Set(current); });
    EXPECT_NE(metrics.prometheus_text().find("pgstream_memory_guard_bytes 7"), std::string::npos);
    current = 9;
    EXPECT_NE(metrics.prometheus_text().find("pgstream_memory_guard_bytes 9"), std::string::npos);
}

TEST(Metrics, OneNameCannotChangeItsKind) {
    Metrics metrics;
    metrics.counter("pgstream.x", "1", "x");
    EXPECT_THROW(metrics.gauge("pgstream.x", "1", "x"), std::logic_error);
}

TEST(HealthServer, RejectsMalformedAddressesNamingTheSetting) {
    Metrics metrics;
    for (std::string address : {"9910", "localhost:", "localhost:99999", "::1:9910", "host:port"}) {
        try {
            HealthServer server({address}, metrics);
            ADD_FAILURE() << address << " accepted";
        } catch (const ConfigError& e) {
            EXPECT_EQ(e.key(), "PGSTREAM_HEALTH_CHECK_ADDRESS") << address;
        }
    }
}

TEST(HealthServer, ServesHealthReadinessStatusAndMetrics) {
    Metrics metrics;
    metrics.gauge("pgstream.replication.lag", "By", "Bytes behind", {{"replication_slot", "s1"}}).Set(5);
    HealthServer server({"127.0.0.1:0", true, "/metrics"}, metrics);
    std::atomic<bool> source_up{true};
    server.add_readiness_check("postgres_source",
                               [&] { return source_up ? std::string() : std::string("connection refused"); });
    server.add_status_section("slot", [] { return std::string("\"pgstream_test_slot\""); });
    int port = server.start();
    ASSERT_GT(port, 0);

    httplib::Client client("127.0.0.1", port);
    auto health = client.Get("/health");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
    EXPECT_NE(health->body.find("\"status\":\"ok\""), std::string::npos);

    auto ready = client.Get("/ready");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 200);
    source_up = false;
    ready = client.Get("/ready");
    ASSERT_TRUE(ready);
    EXPECT_EQ(ready->status, 503);
    EXPECT_NE(ready->body.find("{\"component\":\"postgres_source\",\"error\":\"connection refused\"}"),
              std::string::npos)
        << ready->body;

    auto status = client.Get("/status");
    ASSERT_TRUE(status);
    EXPECT_NE(status->body.find("\"slot\":\"pgstream_test_slot\""), std::string::npos) << status->body;

    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    EXPECT_EQ(scrape->status, 200);
    EXPECT_NE(scrape->body.find("pgstream_replication_lag{replication_slot=\"s1\"} 5"), std::string::npos);

    // Only GET, no bodies.
    auto post = client.Post("/health", std::string(1024, 'x'), "text/plain");
    ASSERT_TRUE(post);
    EXPECT_GE(post->status, 400);
    server.stop();
}

TEST(HealthServer, MetricsAreNotServedUnlessEnabled) {
    Metrics metrics;
    HealthServer server({"127.0.0.1:0", false, "/metrics"}, metrics);
    int port = server.start();
    httplib::Client client("127.0.0.1", port);
    auto scrape = client.Get("/metrics");
    ASSERT_TRUE(scrape);
    EXPECT_EQ(scrape->status, 404);
}

TEST(CommitTime, ParsesWhatWal2jsonPrints) {
    EXPECT_DOUBLE_EQ(*parse_commit_time("1970-01-01 00:00:01+00"), 1.0);
    EXPECT_DOUBLE_EQ(*parse_commit_time("2024-05-01 12:00:00.25+00"), 1714564800.25);
    EXPECT_DOUBLE_EQ(*parse_commit_time("2024-05-01 14:00:00.25+02"), 1714564800.25);
    EXPECT_DOUBLE_EQ(*parse_commit_time("2024-05-01 06:30:00-05:30"), 1714564800.0);
    for (std::string bad :
         {"", "infinity", "2024-05-01", "2024-05-01 12:00:00", "2024-05-01 12:00:00+0", "x"})
        EXPECT_FALSE(parse_commit_time(bad)) << bad;
}

namespace {
class CountingProcessor : public Processor {
  public:
    std::string name() const override { return "counting"; }
    void process(EventPtr) override { ++seen; }
    int seen = 0;
};
}  // namespace

TEST(InstrumentedProcessor, CountsEventsByActionAndRecordsLagAndLatency) {
    Metrics metrics;
    CountingProcessor inner;
    InstrumentedProcessor instrumented(inner, "stdout-writer", metrics);
    for (Action action : {Action::Insert, Action::Insert, Action::Delete}) {
        auto event = std::make_shared<Event>();
        event->action = action;
        event->timestamp = "2020-01-01 00:00:00+00";
        instrumented.process(event);
    }
    EXPECT_EQ(inner.seen, 3);
    std::string text = metrics.prometheus_text();
    EXPECT_NE(text.find("pgstream_target_events_total{action=\"insert\",target=\"stdout-writer\"} 2"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("pgstream_target_events_total{action=\"delete\",target=\"stdout-writer\"} 1"),
              std::string::npos);
    EXPECT_NE(text.find("pgstream_target_processing_lag_count{target=\"stdout-writer\"} 3"),
              std::string::npos);
    // Committed in 2020: every observation is above the last bucket bound (60 s).
    EXPECT_NE(text.find("pgstream_target_processing_lag_bucket{target=\"stdout-writer\",le=\"60\"} 0"),
              std::string::npos);
    EXPECT_NE(text.find("pgstream_target_processing_latency_count{target=\"stdout-writer\"} 3"),
              std::string::npos);
}

TEST(ObservabilitySettings, YamlInstrumentationSectionMapsOntoTheKeys) {
    auto values = Config::parse_yaml(
        "instrumentation:\n  health:\n    enabled: true\n    address: 127.0.0.1:9911\n  metrics:\n"
        "    endpoint: collector:4318\n    collection_interval: 5s\n    prometheus:\n      enabled: true\n"
        "      endpoint: /prom\n",
        "test.yaml");
    EXPECT_EQ(values["PGSTREAM_HEALTH_CHECK_ENABLED"], "true");
    EXPECT_EQ(values["PGSTREAM_HEALTH_CHECK_ADDRESS"], "127.0.0.1:9911");
    EXPECT_EQ(values["PGSTREAM_METRICS_ENDPOINT"], "collector:4318");
    EXPECT_EQ(values["PGSTREAM_METRICS_COLLECTION_INTERVAL"], "5s");
    EXPECT_EQ(values["PGSTREAM_METRICS_PROMETHEUS_ENABLED"], "true");
    EXPECT_EQ(values["PGSTREAM_METRICS_PROMETHEUS_ENDPOINT"], "/prom");
}

TEST(OutputMetrics, CountsOutcomesPerActionAndReadsTheMemoryGuard) {
    Metrics metrics;
    MemoryGuard guard(1000);
    ASSERT_TRUE(guard.acquire(300));
    {
        OutputMetrics output(metrics, "stdout-writer");
        output.observe_memory(guard);
        output.record(Action::Insert, OutputOutcome::kDelivered, 2);
        output.record(Action::Update, OutputOutcome::kRetried);
        Event deleted;
        deleted.action = Action::Delete;
        output.record(deleted, OutputOutcome::kDeadLettered);
        std::string text = metrics.prometheus_text();
        for (const char* expected :
             {"pgstream_target_event_outcomes_total{action=\"insert\",outcome=\"delivered\",target=\"stdout-"
              "writer\"} 2",
              "pgstream_target_event_outcomes_total{action=\"update\",outcome=\"retried\",target=\"stdout-"
              "writer\"} 1",
              "pgstream_target_event_outcomes_total{action=\"delete\",outcome=\"dead_lettered\",target="
              "\"stdout-writer\"} 1",
              "pgstream_target_event_outcomes_total{action=\"message\",outcome=\"fatal\",target=\"stdout-"
              "writer\"} 0",
              "pgstream_target_memory_used{target=\"stdout-writer\"} 300",
              "pgstream_target_memory_limit{target=\"stdout-writer\"} 1000",
              "pgstream_target_memory_blocked_total{target=\"stdout-writer\"} 0"})
            EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
    }
    // The output is gone: a later collection (the last OTLP push) must not read its guard.
    guard.release(300);
    std::string text = metrics.prometheus_text();
    EXPECT_NE(text.find("pgstream_target_memory_used{target=\"stdout-writer\"} 300"), std::string::npos)
        << text;
}
