// The OTLP exporter against a real HTTP receiver that checks each request against the OTLP/HTTP JSON encoding
// of ExportMetricsServiceRequest (opentelemetry-proto metrics/v1, proto3 JSON mapping).
#include <gtest/gtest.h>
#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include "config/config.h"
#include "observability/otlp_exporter.h"
#include "wal/json.h"

using namespace pgstream;

namespace {

bool is_uint64_string(const JsonValue* value) {
    if (!value || !value->is_string() || value->text.empty() || value->text.size() > 20) return false;
    for (char c : value->text)
        if (c < '0' || c > '9') return false;
    return true;
}

// Every violation of the OTLP JSON shape, empty when valid.
std::vector<std::string> otlp_violations(const JsonValue& request) {
    std::vector<std::string> problems;
    auto expect = [&](bool ok, const std::string& what) {
        if (!ok) problems.push_back(what);
    };
    const JsonValue* resource_metrics = request.find("resourceMetrics");
    expect(resource_metrics && resource_metrics->is_array() && !resource_metrics->items.empty(),
           "resourceMetrics");
    if (!problems.empty()) return problems;
    for (const auto& resource_metric : resource_metrics->items) {
        const JsonValue* resource = resource_metric.find("resource");
        const JsonValue* attributes = resource ? resource->find("attributes") : nullptr;
        expect(attributes && attributes->is_array(), "resource.attributes");
        std::set<std::string> keys;
        if (attributes)
            for (const auto& attribute : attributes->items) {
                const JsonValue* key = attribute.find("key");
                const JsonValue* value = attribute.find("value");
                expect(key && key->is_string() && value && value->find("stringValue"), "attribute key/value");
                if (key) keys.insert(key->text);
            }
        expect(keys.count("service.name") && keys.count("service.version"),
               "service.name and service.version");
        const JsonValue* scope_metrics = resource_metric.find("scopeMetrics");
        expect(scope_metrics && scope_metrics->is_array(), "scopeMetrics");
        if (!scope_metrics) continue;
        for (const auto& scope_metric : scope_metrics->items) {
            const JsonValue* metrics = scope_metric.find("metrics");
            expect(metrics && metrics->is_array(), "metrics");
            if (!metrics) continue;
            for (const auto& metric : metrics->items) {
                const JsonValue* name = metric.find("name");
                expect(name && name->is_string() && !name->text.empty(), "metric name");
                int kinds = 0;
                for (const char* kind : {"gauge", "sum", "histogram", "exponentialHistogram", "summary"})
                    kinds += metric.find(kind) ? 1 : 0;
                expect(kinds == 1, "exactly one data kind in " + (name ? name->text : "?"));
                for (const char* kind : {"gauge", "sum", "histogram"}) {
                    const JsonValue* data = metric.find(kind);
                    if (!data) continue;
                    if (std::string(kind) != "gauge") {
                        const JsonValue* temporality = data->find("aggregationTemporality");
                        expect(temporality && temporality->is_number() &&
                                   (temporality->text == "1" || temporality->text == "2"),
                               "aggregationTemporality");
                    }
                    const JsonValue* points = data->find("dataPoints");
                    expect(points && points->is_array() && !points->items.empty(), "dataPoints");
                    if (!points) continue;
                    for (const auto& point : points->items) {
                        expect(is_uint64_string(point.find("timeUnixNano")),
                               "timeUnixNano as a uint64 string");
                        expect(is_uint64_string(point.find("startTimeUnixNano")), "startTimeUnixNano");
                        if (std::string(kind) == "histogram") {
                            const JsonValue* counts = point.find("bucketCounts");
                            const JsonValue* bounds = point.find("explicitBounds");
                            expect(is_uint64_string(point.find("count")), "histogram count");
                            expect(counts && bounds && counts->items.size() == bounds->items.size() + 1,
                                   "bucketCounts has one more entry than explicitBounds");
                            uint64_t total = 0;
                            if (counts)
                                for (const auto& count : counts->items) {
                                    expect(is_uint64_string(&count), "bucket count as a uint64 string");
                                    total += std::stoull(count.text);
                                }
                            if (is_uint64_string(point.find("count")))
                                expect(total == std::stoull(point.find("count")->text),
                                       "buckets add up to count");
                        } else {
                            const JsonValue* value = point.find("asDouble");
                            expect(value && value->is_number(), "asDouble");
                        }
                    }
                }
            }
        }
    }
    return problems;
}

class Receiver {
  public:
    Receiver() {
        server_.Post("/v1/metrics", [this](const httplib::Request& request, httplib::Response& response) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                bodies_.push_back(request.body);
                content_types_.push_back(request.get_header_value("Content-Type"));
            }
            arrived_.notify_all();
            response.set_content("{}", "application/json");
        });
        port_ = server_.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { server_.listen_after_bind(); });
    }
    ~Receiver() {
        server_.stop();
        thread_.join();
    }
    int port() const { return port_; }
    std::vector<std::string> wait_for(size_t count) {
        std::unique_lock<std::mutex> lock(mutex_);
        arrived_.wait_for(lock, std::chrono::seconds(20), [&] { return bodies_.size() >= count; });
        return bodies_;
    }
    std::string content_type(size_t i) {
        std::lock_guard<std::mutex> lock(mutex_);
        return content_types_.at(i);
    }

  private:
    httplib::Server server_;
    int port_ = 0;
    std::thread thread_;
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::vector<std::string> bodies_, content_types_;
};

const JsonValue* find_metric(const JsonValue& request, const std::string& name) {
    for (const auto& metric :
         request.find("resourceMetrics")->items[0].find("scopeMetrics")->items[0].find("metrics")->items)
        if (metric.find("name")->text == name) return &metric;
    return nullptr;
}

}  // namespace

TEST(OtlpExporter, EndpointForms) {
    EXPECT_EQ(otlp_metrics_url("collector:4318"), "http://collector:4318/v1/metrics");
    EXPECT_EQ(otlp_metrics_url("http://collector:4318"), "http://collector:4318/v1/metrics");
    EXPECT_EQ(otlp_metrics_url("https://c.example/"), "https://c.example/v1/metrics");
    EXPECT_EQ(otlp_metrics_url("https://c.example/otlp/v1/metrics"), "https://c.example/otlp/v1/metrics");
    for (std::string bad : {"", "grpc://c:4317", "http://", "http:// c:1"}) {
        try {
            otlp_metrics_url(bad);
            ADD_FAILURE() << bad;
        } catch (const ConfigError& e) {
            EXPECT_EQ(e.key(), "PGSTREAM_METRICS_ENDPOINT");
        }
    }
}

TEST(OtlpExporter, ExportsValidOtlpJsonPeriodicallyAndOnStop) {
    Receiver receiver;
    Metrics metrics;
    metrics.counter("pgstream.output.events", "{event}", "Events delivered", {{"target", "stdout-writer"}})
        .Increment(5);
    metrics.gauge("pgstream.replication.lag", "By", "Bytes behind", {{"replication_slot", "s"}}).Set(1234);
    auto& latency = metrics.histogram("pgstream.target.processing.latency", "s", "Time in the output",
                                      Metrics::latency_buckets(), {{"target", "stdout-writer"}});
    latency.Observe(0.003);
    latency.Observe(0.2);
    latency.Observe(100);  // above the last bound

    OtlpExporter exporter({"127.0.0.1:" + std::to_string(receiver.port()), std::chrono::milliseconds(100)},
                          metrics);
    exporter.start();
    auto bodies = receiver.wait_for(2);
    ASSERT_GE(bodies.size(), 2u);
    uint64_t before_stop = exporter.exports_succeeded();
    exporter.stop();
    EXPECT_GT(exporter.exports_succeeded(), before_stop) << "stop() exports the final values";
    size_t after_stop = receiver.wait_for(bodies.size() + 1).size();
    EXPECT_GT(after_stop, bodies.size()) << "stop() exports the final values";
    EXPECT_EQ(receiver.content_type(0), "application/json");

    JsonValue request = parse_json(bodies[0]);
    auto problems = otlp_violations(request);
    EXPECT_TRUE(problems.empty()) << ::testing::PrintToString(problems) << "\n" << bodies[0];

    const JsonValue* events = find_metric(request, "pgstream.output.events");
    ASSERT_NE(events, nullptr);
    EXPECT_EQ(events->find("unit")->text, "{event}");
    EXPECT_TRUE(events->find("sum")->find("isMonotonic")->as_bool());
    EXPECT_EQ(events->find("sum")->find("dataPoints")->items[0].find("asDouble")->text, "5");
    const JsonValue* lag = find_metric(request, "pgstream.replication.lag");
    ASSERT_NE(lag, nullptr);
    EXPECT_EQ(lag->find("gauge")->find("dataPoints")->items[0].find("asDouble")->text, "1234");
    EXPECT_EQ(lag->find("gauge")->find("dataPoints")->items[0].find("attributes")->items[0].find("key")->text,
              "replication_slot");
    const JsonValue* histogram = find_metric(request, "pgstream.target.processing.latency");
    ASSERT_NE(histogram, nullptr);
    const JsonValue& point = histogram->find("histogram")->find("dataPoints")->items[0];
    EXPECT_EQ(point.find("count")->text, "3");
    EXPECT_EQ(point.find("bucketCounts")->items.back().text, "1")
        << "the overflow bucket holds the 100 s sample";
}

TEST(OtlpExporter, ACollectorThatIsDownIsReportedNotFatal) {
    Metrics metrics;
    metrics.counter("pgstream.output.events", "{event}", "Events delivered").Increment();
    // A port nobody listens on: bound, never listened, closed.
    int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length), 0);
    int closed_port = ntohs(address.sin_port);
    ::close(probe);
    OtlpExporter exporter({"127.0.0.1:" + std::to_string(closed_port), std::chrono::seconds(60)}, metrics);
    EXPECT_NE(exporter.export_now(), "");
    EXPECT_EQ(exporter.exports_succeeded(), 0u);
}
