#include "observability/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>
#include <stdexcept>

namespace pgstream {

namespace {

std::string prometheus_name_of(InstrumentDescription::Kind kind, const std::string& name) {
    std::string out = name;
    for (char& c : out)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            c = '_';
    if (kind == InstrumentDescription::Kind::Counter) out += "_total";
    return out;
}

prometheus::Labels to_labels(const MetricLabels& labels) {
    return prometheus::Labels(labels.begin(), labels.end());
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {}

const InstrumentDescription& Metrics::describe_new(InstrumentDescription::Kind kind, const std::string& name,
                                                   const std::string& unit, const std::string& help) {
    auto found = by_name_.find(name);
    if (found != by_name_.end()) {
        if (found->second.kind != kind || found->second.unit != unit)
            throw std::logic_error("metric " + name + " registered twice with different kinds or units");
        return found->second;
    }
    InstrumentDescription description{kind, name, unit, help, prometheus_name_of(kind, name)};
    auto& stored = by_name_.emplace(name, std::move(description)).first->second;
    by_prometheus_[stored.prometheus_name] = &stored;
    return stored;
}

prometheus::Counter& Metrics::counter(const std::string& name, const std::string& unit,
                                      const std::string& help, const MetricLabels& labels) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto& description = describe_new(InstrumentDescription::Kind::Counter, name, unit, help);
    auto& family = counters_[name];
    if (!family)
        family =
            &prometheus::BuildCounter().Name(description.prometheus_name).Help(help).Register(*registry_);
    return family->Add(to_labels(labels));
}

prometheus::Gauge& Metrics::gauge(const std::string& name, const std::string& unit, const std::string& help,
                                  const MetricLabels& labels) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto& description = describe_new(InstrumentDescription::Kind::Gauge, name, unit, help);
    auto& family = gauges_[name];
    if (!family)
        family = &prometheus::BuildGauge().Name(description.prometheus_name).Help(help).Register(*registry_);
    return family->Add(to_labels(labels));
}

prometheus::Histogram& Metrics::histogram(const std::string& name, const std::string& unit,
                                          const std::string& help, const std::vector<double>& buckets,
                                          const MetricLabels& labels) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto& description = describe_new(InstrumentDescription::Kind::Histogram, name, unit, help);
    auto& family = histograms_[name];
    if (!family)
        family =
            &prometheus::BuildHistogram().Name(description.prometheus_name).Help(help).Register(*registry_);
    return family->Add(to_labels(labels), buckets);
}

void Metrics::on_collect(std::function<void()> refresh) {
    std::lock_guard<std::mutex> lock(mutex_);
    refreshers_.push_back(std::move(refresh));
}

void Metrics::observe_counter(const std::string& name, const std::string& unit, const std::string& help,
                              const MetricLabels& labels, std::function<double()> read) {
    prometheus::Counter& series = counter(name, unit, help, labels);
    on_collect([&series, read = std::move(read)] {
        double total = read();
        if (total > series.Value()) series.Increment(total - series.Value());
    });
}

void Metrics::observe_gauge(const std::string& name, const std::string& unit, const std::string& help,
                            const MetricLabels& labels, std::function<double()> read) {
    prometheus::Gauge& series = gauge(name, unit, help, labels);
    on_collect([&series, read = std::move(read)] { series.Set(read()); });
}

std::vector<prometheus::MetricFamily> Metrics::collect() {
    std::lock_guard<std::mutex> collecting(collect_mutex_);
    std::vector<std::function<void()>> refreshers;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        refreshers = refreshers_;
    }
    for (const auto& refresh : refreshers) refresh();
    return registry_->Collect();
}

std::string Metrics::prometheus_text() {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, collect());
    return out.str();
}

const InstrumentDescription* Metrics::describe(const std::string& prometheus_name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = by_prometheus_.find(prometheus_name);
    return found == by_prometheus_.end() ? nullptr : found->second;
}

std::vector<double> Metrics::latency_buckets() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
            0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

std::vector<double> Metrics::size_buckets() {
    std::vector<double> buckets;
    for (double bound = 1; bound <= 16 * 1024 * 1024; bound *= 4) buckets.push_back(bound);
    return buckets;
}

}  // namespace pgstream
