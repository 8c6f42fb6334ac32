// The PostgreSQL source module: a replication listener with the watermark checkpointer.
#pragma once

#include <mutex>
#include <string>

#include "config/config.h"
#include "listener/postgres/postgres_listener.h"
#include "pipeline/module.h"
#include "snapshot/snapshot_progress.h"

namespace pgstream {

class PostgresSource : public Source {
  public:
    // Stops with a token of its own (drain timeout: settings.drain_timeout).
    explicit PostgresSource(PostgresListenerSettings settings)
        : PostgresSource(settings, StopToken(settings.drain_timeout)) {}
    // stop() requests `stop`; any stop of `stop` (a signal, a failed output) stops the source.
    PostgresSource(PostgresListenerSettings settings, StopToken stop);
    std::string name() const override { return "postgres listener"; }
    // The watermark for streamed events; snapshot rows go to the running snapshot's progress.
    Acknowledger& acknowledger() override { return router_; }
    std::string run(Processor& head) override;
    void stop() override;
    std::string default_schema_log_url() const override { return settings_.url; }
    void observe(Metrics& metrics) override;
    std::string readiness() const override;
    std::string status_json() const override;

    Watermark& watermark() { return watermark_; }
    CheckpointRouter& checkpoint_router() { return router_; }
    const PostgresListenerSettings& settings() const { return settings_; }
    const std::string& slot_name() const { return slot_name_; }
    // Reads and checks the PGSTREAM_POSTGRES_LISTENER_* settings (opens the dead-letter file when one is
    // configured: a local file, not a server); throws ConfigError.
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
    CheckpointRouter router_{watermark_};
    mutable std::mutex listener_mutex_;
    PostgresListener* listener_ = nullptr;
    Observed last_observed_;
};

// Registers the source "postgres listener" (selected by PGSTREAM_POSTGRES_LISTENER_URL; YAML
// source.postgres).
void register_postgres_source_module();

}  // namespace pgstream
