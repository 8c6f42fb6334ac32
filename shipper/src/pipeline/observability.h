// The pipeline's observability: the metrics registry every module records into, and what serves or pushes it
// (the health server with /health, /ready, /status and the Prometheus endpoint; the OTLP exporter), wired
// from PGSTREAM_HEALTH_CHECK_*, PGSTREAM_METRICS_* (docs/observability.md).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/config.h"
#include "observability/health_server.h"
#include "observability/metrics.h"
#include "observability/otlp_exporter.h"

namespace pgstream {

struct ObservabilitySettings {
    bool health_enabled = false;                     // PGSTREAM_HEALTH_CHECK_ENABLED
    std::string health_address = "localhost:9910";   // PGSTREAM_HEALTH_CHECK_ADDRESS
    bool prometheus_enabled = false;                 // PGSTREAM_METRICS_PROMETHEUS_ENABLED
    std::string prometheus_path = "/metrics";        // PGSTREAM_METRICS_PROMETHEUS_ENDPOINT
    std::string otlp_endpoint;                       // PGSTREAM_METRICS_ENDPOINT ("" = no push)
    std::chrono::milliseconds otlp_interval{60000};  // PGSTREAM_METRICS_COLLECTION_INTERVAL

    // Reads and validates the settings (no I/O); throws ConfigError naming the setting.
    static ObservabilitySettings from(const Config& config);
    // Whether anything reads the metrics (instrumentation is skipped otherwise).
    bool metrics_wanted() const { return prometheus_enabled || !otlp_endpoint.empty(); }
};

// The keys above, for the configuration's list of known settings.
const std::vector<std::string>& observability_config_keys();

class PipelineObservability {
  public:
    PipelineObservability(ObservabilitySettings settings, Metrics& metrics);
    ~PipelineObservability();

    const ObservabilitySettings& settings() const { return settings_; }
    // Null when PGSTREAM_HEALTH_CHECK_ENABLED is false.
    HealthServer* health_server() { return health_.get(); }

    // Binds the health server and starts the exporter. A health address that cannot be bound is a runtime
    // error (std::runtime_error naming the setting).
    void start();
    // Stops serving and pushes the final metrics.
    void stop();

  private:
    ObservabilitySettings settings_;
    Metrics& metrics_;
    std::unique_ptr<HealthServer> health_;
    std::unique_ptr<OtlpExporter> exporter_;
};

}  // namespace pgstream
