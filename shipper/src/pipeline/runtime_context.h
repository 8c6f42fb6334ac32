// What every module's factory is handed when the pipeline builds it: the metrics registry, the pipeline's
// stop token, and the one HTTP client the HTTP outputs share. The logger is process-wide (util/log.h).
#pragma once

#include <memory>
#include <mutex>

#include "http/http_client.h"
#include "observability/metrics.h"
#include "util/stop_token.h"

namespace pgstream {

class RuntimeContext {
  public:
    RuntimeContext(Metrics& metrics, StopToken stop, HttpClientSettings http_settings = {})
        : metrics_(metrics), stop_(std::move(stop)), http_settings_(std::move(http_settings)) {}

    Metrics& metrics() const { return metrics_; }
    const StopToken& stop() const { return stop_; }
    // Created on first use (its thread runs only for pipelines with an HTTP output); shared by every caller.
    HttpClient& http_client() {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!http_client_) http_client_ = std::make_unique<HttpClient>(http_settings_);
        return *http_client_;
    }

  private:
    Metrics& metrics_;
    StopToken stop_;
    HttpClientSettings http_settings_;
    std::mutex mutex_;
    std::unique_ptr<HttpClient> http_client_;
};

}  // namespace pgstream
