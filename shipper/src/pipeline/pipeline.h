// Wires a pipeline from configuration: source (listener + checkpointer) → translator → filter → outputs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "listener/postgres/postgres_listener.h"
#include "observability/instrumented_processor.h"
#include "pipeline/observability.h"
#include "pipeline/registry.h"
#include "processor/filter/filter.h"
#include "processor/stdout/stdout_writer.h"
#include "processor/translator/translator.h"

namespace pgstream {

// The PostgreSQL source: a replication listener with the watermark checkpointer.
class PostgresSource : public Source {
  public:
    // Stops with a token of its own (drain timeout: settings.drain_timeout).
    explicit PostgresSource(PostgresListenerSettings settings)
        : PostgresSource(settings, StopToken(settings.drain_timeout)) {}
    // stop() requests `stop`; any stop of `stop` (a signal, a failed output) stops the source.
    PostgresSource(PostgresListenerSettings settings, StopToken stop);
    std::string name() const override { return "postgres listener"; }
    Acknowledger& acknowledger() override { return watermark_; }
    std::string run(Processor& head) override;
    void stop() override;
    std::string default_schema_log_url() const override { return settings_.url; }
    void observe(Metrics& metrics) override;
    std::string readiness() const override;
    std::string status_json() const override;

    Watermark& watermark() { return watermark_; }
    static PostgresListenerSettings settings_from(const Config& config);

  private:
    // What the metrics, /ready and /status read of the running listener (null between runs).
    struct Observed {
        uint64_t server_wal_end = 0;
        uint64_t reconnects = 0;
    };
    Observed observed() const;

    PostgresListenerSettings settings_;
    std::string slot_name_;
    StopToken stop_;
    Watermark watermark_;
    mutable std::mutex listener_mutex_;
    PostgresListener* listener_ = nullptr;
    Observed last_observed_;
};

class Pipeline {
  public:
    // Throws ConfigError for missing or invalid settings (the CLI exits 2 with its message).
    static std::unique_ptr<Pipeline> build(const Config& config);

    // Runs until stop() or a fatal error; returns "" on a clean stop: everything the outputs accepted was
    // delivered and checkpointed. After stop() the outputs have PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT to deliver;
    // what they have not delivered by then stays unconfirmed and run() returns an error.
    std::string run();
    // Thread-safe, and safe to call before run().
    void stop();

    Source& source() { return *source_; }
    Metrics& metrics() { return metrics_; }
    std::vector<std::string> describe() const;

  private:
    Pipeline() = default;

    void instrument_outputs();
    void serve_health(HealthServer& server);

    // Handed to every module: the one stop of this pipeline and its drain deadline.
    StopToken stop_;
    Metrics metrics_;
    std::unique_ptr<PipelineObservability> observability_;
    std::vector<std::unique_ptr<InstrumentedProcessor>> instrumented_;
    std::unique_ptr<Source> source_;
    std::vector<std::unique_ptr<Processor>> outputs_;
    std::unique_ptr<Processor> fan_out_;
    std::unique_ptr<Filter> filter_;
    std::unique_ptr<Translator> translator_;
    Processor* head_ = nullptr;
};

}  // namespace pgstream
