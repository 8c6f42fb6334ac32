#include "observability/otlp_exporter.h"

#include <curl/curl.h>

#include <cmath>
#include <cstdio>

#include "config/config.h"
#include "util/log.h"
#include "wal/json.h"

namespace pgstream {

namespace {

uint64_t unix_nano_now() {
    return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

// proto3 JSON: 64-bit integers are strings.
std::string quoted_integer(uint64_t value) {
    return "\"" + std::to_string(value) + "\"";
}

// Doubles as JSON numbers; NaN and infinities, which JSON lacks, as proto3's string forms.
std::string json_double(double value) {
    if (std::isnan(value)) return "\"NaN\"";
    if (std::isinf(value)) return value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    return buffer;
}

std::string string_attribute(const std::string& key, const std::string& value) {
    return "{\"key\":" + json_quote(key) + ",\"value\":{\"stringValue\":" + json_quote(value) + "}}";
}

std::string attributes_of(const prometheus::ClientMetric& metric) {
    std::string out = "[";
    for (const auto& label : metric.label) {
        if (out.size() > 1) out += ",";
        out += string_attribute(label.name, label.value);
    }
    return out + "]";
}

constexpr int kAggregationTemporalityCumulative = 2;

}  // namespace

std::string otlp_metrics_url(const std::string& endpoint) {
    auto invalid = [&](const std::string& why) { return ConfigError("PGSTREAM_METRICS_ENDPOINT", why); };
    if (endpoint.empty()) throw invalid("empty");
    std::string url = endpoint;
    size_t scheme_end = url.find("://");
    if (scheme_end == std::string::npos) {
        url = "http://" + url;
        scheme_end = 4;
    } else {
        std::string scheme = url.substr(0, scheme_end);
        if (scheme != "http" && scheme != "https")
            throw invalid("the OTLP endpoint must be host:port or an http:// or https:// URL");
    }
    size_t authority = scheme_end + 3;
    size_t path = url.find('/', authority);
    std::string host_port =
        url.substr(authority, path == std::string::npos ? std::string::npos : path - authority);
    if (host_port.empty() || host_port.find_first_of(" \t\r\n") != std::string::npos)
        throw invalid("the OTLP endpoint must be host:port or an http:// or https:// URL");
    if (path == std::string::npos || path == url.size() - 1)
        url = url.substr(0, authority + host_port.size()) + "/v1/metrics";
    return url;
}

std::string encode_otlp_metrics(const std::vector<prometheus::MetricFamily>& families, const Metrics& metrics,
                                uint64_t start_time_unix_nano, uint64_t time_unix_nano) {
    std::string times = "\"startTimeUnixNano\":" + quoted_integer(start_time_unix_nano) +
                        ",\"timeUnixNano\":" + quoted_integer(time_unix_nano);
    std::string out =
        "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[" +
        string_attribute("service.name", "pgstream") + "," +
        string_attribute("service.version", PGSTREAM_VERSION) +
        "]},\"scopeMetrics\":[{\"scope\":{\"name\":\"pgstream\",\"version\":" + json_quote(PGSTREAM_VERSION) +
        "},\"metrics\":[";
    bool first_metric = true;
    for (const auto& family : families) {
        const InstrumentDescription* description = metrics.describe(family.name);
        std::string name = description ? description->name : family.name;
        std::string unit = description ? description->unit : "";
        std::string points;
        for (const auto& metric : family.metric) {
            if (!points.empty()) points += ",";
            points += "{\"attributes\":" + attributes_of(metric) + "," + times;
            switch (family.type) {
                case prometheus::MetricType::Counter:
                    points += ",\"asDouble\":" + json_double(metric.counter.value);
                    break;
                case prometheus::MetricType::Gauge:
                    points += ",\"asDouble\":" + json_double(metric.gauge.value);
                    break;
                case prometheus::MetricType::Histogram: {
                    // Prometheus buckets are cumulative and end with +Inf; OTLP's are per bucket, with one
                    // more count than bounds (the last bucket is everything above the last bound).
                    std::string bounds, counts;
                    uint64_t previous = 0;
                    for (const auto& bucket : metric.histogram.bucket) {
                        if (!counts.empty()) counts += ",";
                        counts += quoted_integer(bucket.cumulative_count - previous);
                        previous = bucket.cumulative_count;
                        if (std::isinf(bucket.upper_bound)) continue;
                        if (!bounds.empty()) bounds += ",";
                        bounds += json_double(bucket.upper_bound);
                    }
                    points += ",\"count\":" + quoted_integer(metric.histogram.sample_count) +
                              ",\"sum\":" + json_double(metric.histogram.sample_sum) + ",\"bucketCounts\":[" +
                              counts + "],\"explicitBounds\":[" + bounds + "]";
                    break;
                }
                default:
                    points += ",\"asDouble\":" + json_double(metric.untyped.value);
                    break;
            }
            points += "}";
        }
        if (points.empty()) continue;
        out += first_metric ? "" : ",";
        first_metric = false;
        out += "{\"name\":" + json_quote(name) + ",\"description\":" + json_quote(family.help) +
               ",\"unit\":" + json_quote(unit) + ",";
        std::string temporality =
            ",\"aggregationTemporality\":" + std::to_string(kAggregationTemporalityCumulative);
        switch (family.type) {
            case prometheus::MetricType::Counter:
                out += "\"sum\":{\"dataPoints\":[" + points + "]" + temporality + ",\"isMonotonic\":true}";
                break;
            case prometheus::MetricType::Histogram:
                out += "\"histogram\":{\"dataPoints\":[" + points + "]" + temporality + "}";
                break;
            default:
                out += "\"gauge\":{\"dataPoints\":[" + points + "]}";
                break;
        }
        out += "}";
    }
    return out + "]}]}]}";
}

OtlpExporter::OtlpExporter(OtlpSettings settings, Metrics& metrics)
    : settings_(std::move(settings)),
      url_(otlp_metrics_url(settings_.endpoint)),
      metrics_(metrics),
      start_time_unix_nano_(unix_nano_now()) {
    check_otlp_interval(settings_.interval);
}

void check_otlp_interval(std::chrono::milliseconds interval) {
    if (interval.count() <= 0)
        throw ConfigError("PGSTREAM_METRICS_COLLECTION_INTERVAL", "must be a positive duration such as 60s");
}

OtlpExporter::~OtlpExporter() {
    stop();
}

void OtlpExporter::start() {
    thread_ = std::thread([this] { run(); });
}

void OtlpExporter::stop() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
}

uint64_t OtlpExporter::exports_succeeded() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return succeeded_;
}

void OtlpExporter::run() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
        // A stop that arrives during an export still gets an export of its own, after it: the final values.
        bool stop_requested = wake_.wait_for(lock, settings_.interval, [this] { return stopping_; });
        lock.unlock();
        std::string error = export_now();
        if (!error.empty())
            log::warn("metrics: OTLP export failed: ", error, "; the next export sends the totals again");
        lock.lock();
        if (stop_requested) break;
    }
}

std::string OtlpExporter::export_now() {
    std::string body =
        encode_otlp_metrics(metrics_.collect(), metrics_, start_time_unix_nano_, unix_nano_now());
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
    if (!curl) return "cannot create a libcurl handle";
    std::unique_ptr<curl_slist, void (*)(curl_slist*)> headers(
        curl_slist_append(nullptr, "Content-Type: application/json"), curl_slist_free_all);
    std::string response;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(curl.get(), CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.size()));
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, long(settings_.timeout.count()));
    curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(
        curl.get(), CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t count, void* target) {
            auto* text = static_cast<std::string*>(target);
            if (text->size() < 4096) text->append(data, std::min(size * count, 4096 - text->size()));
            return size * count;
        });
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &response);
    CURLcode code = curl_easy_perform(curl.get());
    if (code != CURLE_OK) return error_buffer[0] ? error_buffer : curl_easy_strerror(code);
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) return "the collector answered HTTP " + std::to_string(status);
    std::lock_guard<std::mutex> lock(mutex_);
    ++succeeded_;
    return {};
}

}  // namespace pgstream
