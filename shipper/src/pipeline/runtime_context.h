// What every module's factory is handed when the pipeline builds it: the metrics registry, the pipeline's
// stop token, and the one HTTP client the HTTP outputs share. The logger is process-wide (util/log.h).
#pragma once

#include <memory>
#include <mutex>

#include "http/http_client.h"
#include "observability/metrics.h"
#include "observability/output_metrics.h"
#include "util/stop_token.h"

namespace pgstream {

class RuntimeContext {
  public:
    RuntimeContext(Metrics& metrics, StopToken stop, HttpClientSettings http_settings = {})
        : metrics_(metrics), stop_(std::move(stop)), http_settings_(std::move(http_settings)) {}

    Metrics& metrics() const { return metrics_; }
    // Whether anything reads the metrics (Prometheus enabled or an OTLP endpoint set). When nothing does, the
    // outputs skip their per-event instruments. On unless the pipeline turns it off.
    bool metrics_enabled() const { return metrics_enabled_; }
    void set_metrics_enabled(bool enabled) { metrics_enabled_ = enabled; }
    // The instruments of the output named `target` (observability/output_metrics.h: "stdout-writer",
    // "kafka-batch-writer", ...), or null when metrics are off.
    std::unique_ptr<OutputMetrics> output_metrics(std::string target) const {
        if (!metrics_enabled_) return nullptr;
        return std::make_unique<OutputMetrics>(metrics_, std::move(target));
    }
    const StopToken& stop() const { return stop_; }
    // Created on first use (its threads run only for pipelines with an HTTP output); shared by every caller.
    HttpClient& http_client() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!http_client_) http_client_ = std::make_unique<HttpClient>(http_settings_);
        return *http_client_;
    }

  private:
    Metrics& metrics_;
    StopToken stop_;
    bool metrics_enabled_ = true;
    HttpClientSettings http_settings_;
    std::mutex mutex_;
    std::unique_ptr<HttpClient> http_client_;
};

}  // namespace pgstream
