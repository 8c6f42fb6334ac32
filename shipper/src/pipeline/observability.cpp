#include "pipeline/observability.h"

namespace pgstream {

const std::vector<std::string>& observability_config_keys() {
    static const std::vector<std::string> keys{
        "PGSTREAM_HEALTH_CHECK_ENABLED",       "PGSTREAM_HEALTH_CHECK_ADDRESS",
        "PGSTREAM_METRICS_PROMETHEUS_ENABLED", "PGSTREAM_METRICS_PROMETHEUS_ENDPOINT",
        "PGSTREAM_METRICS_ENDPOINT",           "PGSTREAM_METRICS_COLLECTION_INTERVAL"};
    return keys;
}

ObservabilitySettings ObservabilitySettings::from(const Config& config) {
    ObservabilitySettings settings;
    settings.health_enabled = config.get_bool("PGSTREAM_HEALTH_CHECK_ENABLED", settings.health_enabled);
    settings.health_address = config.get_string("PGSTREAM_HEALTH_CHECK_ADDRESS", settings.health_address);
    settings.prometheus_enabled =
        config.get_bool("PGSTREAM_METRICS_PROMETHEUS_ENABLED", settings.prometheus_enabled);
    settings.prometheus_path =
        config.get_string("PGSTREAM_METRICS_PROMETHEUS_ENDPOINT", settings.prometheus_path);
    settings.otlp_endpoint = config.get_string("PGSTREAM_METRICS_ENDPOINT");
    settings.otlp_interval =
        config.get_duration("PGSTREAM_METRICS_COLLECTION_INTERVAL", settings.otlp_interval);
    HealthServer::validate({settings.health_address, settings.prometheus_enabled, settings.prometheus_path});
    if (settings.prometheus_path == "/health" || settings.prometheus_path == "/ready" ||
        settings.prometheus_path == "/status")
        throw ConfigError("PGSTREAM_METRICS_PROMETHEUS_ENDPOINT",
                          "\"" + settings.prometheus_path +
                              "\" must be a path starting with / other than /health, /ready and /status");
    if (settings.prometheus_enabled && !settings.health_enabled)
        throw ConfigError("PGSTREAM_METRICS_PROMETHEUS_ENABLED",
                          "the Prometheus endpoint is served by the health server: set "
                          "PGSTREAM_HEALTH_CHECK_ENABLED=true too");
    if (!settings.otlp_endpoint.empty()) otlp_metrics_url(settings.otlp_endpoint);  // throws ConfigError
    check_otlp_interval(settings.otlp_interval);
    return settings;
}

PipelineObservability::PipelineObservability(ObservabilitySettings settings, Metrics& metrics)
    : settings_(std::move(settings)), metrics_(metrics) {
    if (settings_.health_enabled)
        health_ = std::make_unique<HealthServer>(
            HealthServerSettings{settings_.health_address, settings_.prometheus_enabled,
                                 settings_.prometheus_path},
            metrics_);
    if (!settings_.otlp_endpoint.empty())
        exporter_ = std::make_unique<OtlpExporter>(
            OtlpSettings{settings_.otlp_endpoint, settings_.otlp_interval}, metrics_);
}

PipelineObservability::~PipelineObservability() {
    stop();
}

void PipelineObservability::start() {
    if (health_) health_->start();
    if (exporter_) exporter_->start();
}

void PipelineObservability::stop() {
    if (exporter_) exporter_->stop();
    if (health_) health_->stop();
}

}  // namespace pgstream
