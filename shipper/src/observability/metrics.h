// The shipper's metrics registry: one set of instruments, read by the Prometheus endpoint (pull) and the OTLP
// exporter (push).
//
// Instruments are named as the Go pgstream names its OpenTelemetry instruments ("pgstream.replication.lag"),
// so dashboards carry over; the Prometheus name is the same with '_' for '.' and, for counters, a "_total"
// suffix (what OpenTelemetry's Prometheus exporter does). Labels must have bounded values: never SQL text,
// never row data, table names only where the user opted in.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

namespace pgstream {

using MetricLabels = std::map<std::string, std::string>;

struct InstrumentDescription {
    enum class Kind { Counter, Gauge, Histogram };
    Kind kind;
    std::string name;             // OpenTelemetry name, e.g. "pgstream.replication.lag"
    std::string unit;             // UCUM unit as OpenTelemetry writes it: "By", "s", "{event}", "1"
    std::string help;             // one line
    std::string prometheus_name;  // e.g. "pgstream_replication_lag"
};

class Metrics {
  public:
    Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    // Returns the series of `name` with `labels`, creating the instrument on first use. The same name must
    // always come with the same kind, unit and help. The reference stays valid as long as this object.
    prometheus::Counter& counter(const std::string& name, const std::string& unit, const std::string& help,
                                 const MetricLabels& labels = {});
    prometheus::Gauge& gauge(const std::string& name, const std::string& unit, const std::string& help,
                             const MetricLabels& labels = {});
    prometheus::Histogram& histogram(const std::string& name, const std::string& unit,
                                     const std::string& help, const std::vector<double>& buckets,
                                     const MetricLabels& labels = {});

    // Observable instruments: `refresh` sets their current values right before every collection (a scrape or
    // an export). It runs on the collecting thread with no lock of this class held, so it may take its own.
    void on_collect(std::function<void()> refresh);
    // Observable counter and gauge: `read` gives the current total (a counter's reads never decrease) or
    // value at every collection, from statistics a component keeps anyway (atomics, no lock of this class
    // held).
    void observe_counter(const std::string& name, const std::string& unit, const std::string& help,
                         const MetricLabels& labels, std::function<double()> read);
    void observe_gauge(const std::string& name, const std::string& unit, const std::string& help,
                       const MetricLabels& labels, std::function<double()> read);

    // Runs the refreshers, then snapshots every instrument.
    std::vector<prometheus::MetricFamily> collect();
    // The Prometheus text exposition format (version 0.0.4) of collect().
    std::string prometheus_text();
    // What `prometheus_name` is (OTLP export needs the OpenTelemetry name and unit back); null if unknown.
    const InstrumentDescription* describe(const std::string& prometheus_name) const;

    // Bucket boundaries in seconds for latencies from 100 µs to 60 s.
    static std::vector<double> latency_buckets();
    // Bucket boundaries for sizes (counts or bytes) from 1 to 16 Mi, in powers of 4.
    static std::vector<double> size_buckets();

  private:
    const InstrumentDescription& describe_new(InstrumentDescription::Kind kind, const std::string& name,
                                              const std::string& unit, const std::string& help);

    std::shared_ptr<prometheus::Registry> registry_;
    mutable std::mutex mutex_;
    std::map<std::string, InstrumentDescription> by_name_;               // OpenTelemetry name → description
    std::map<std::string, const InstrumentDescription*> by_prometheus_;  // Prometheus name → description
    std::map<std::string, prometheus::Family<prometheus::Counter>*> counters_;
    std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges_;
    std::map<std::string, prometheus::Family<prometheus::Histogram>*> histograms_;
    std::vector<std::function<void()>> refreshers_;
    std::mutex collect_mutex_;  // one collection at a time: refreshers may keep state between calls
};

}  // namespace pgstream
