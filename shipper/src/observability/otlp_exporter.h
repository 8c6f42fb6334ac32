// Pushes the metrics registry to an OpenTelemetry collector: OTLP/HTTP with the JSON encoding
// (POST <endpoint>/v1/metrics, Content-Type application/json), every collection interval and once more on
// stop. Cumulative temporality (the registry's counters and histograms are cumulative), resource attributes
// service.name=pgstream and service.version. The Go pgstream speaks OTLP/gRPC on 4317; OTLP/HTTP on 4318 is
// the same data model, accepted by every collector, and needs no gRPC stack here.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observability/metrics.h"

namespace pgstream {

struct OtlpSettings {
    // "host:port" or an http(s) URL; "/v1/metrics" is appended unless the URL has a path.
    std::string endpoint;
    std::chrono::milliseconds interval{60000};
    std::chrono::milliseconds timeout{10000};
};

// The URL metrics are posted to; throws ConfigError (PGSTREAM_METRICS_ENDPOINT) when it is not one.
std::string otlp_metrics_url(const std::string& endpoint);
// Throws ConfigError (PGSTREAM_METRICS_COLLECTION_INTERVAL) unless the interval is positive.
void check_otlp_interval(std::chrono::milliseconds interval);

// The ExportMetricsServiceRequest of `families` in OTLP's JSON encoding (proto3 JSON mapping: lowerCamelCase
// names, 64-bit integers as strings, enums as numbers).
std::string encode_otlp_metrics(const std::vector<prometheus::MetricFamily>& families, const Metrics& metrics,
                                uint64_t start_time_unix_nano, uint64_t time_unix_nano);

class OtlpExporter {
  public:
    // Throws ConfigError for a malformed endpoint or a non-positive interval (no connection is made).
    OtlpExporter(OtlpSettings settings, Metrics& metrics);
    ~OtlpExporter();
    OtlpExporter(const OtlpExporter&) = delete;
    OtlpExporter& operator=(const OtlpExporter&) = delete;

    void start();
    // Exports a last time, then stops (the final values of a run are not lost to the interval).
    void stop();
    // One export now; "" when the collector accepted it, else why not. A failed export is logged and the next
    // interval sends the (cumulative) values again, so nothing is lost but resolution.
    std::string export_now();
    uint64_t exports_succeeded() const;

  private:
    void run();

    OtlpSettings settings_;
    std::string url_;
    Metrics& metrics_;
    uint64_t start_time_unix_nano_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    uint64_t succeeded_ = 0;
    std::thread thread_;
};

}  // namespace pgstream
