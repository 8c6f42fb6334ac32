#include "listener/postgres/postgres_source.h"

#include "snapshot/snapshot_settings.h"
#include "wal/json.h"

#include <algorithm>

namespace pgstream {

namespace {

// PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=stop|dead-letter; null for stop.
// `open`: false only checks the settings (validate() does no I/O).
std::shared_ptr<UnreadableRecordFile> dead_letters_from(const Config& config, bool open) {
    std::string rule = config.get_string("PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "stop");
    if (rule == "stop") return nullptr;
    if (rule != "dead-letter")
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD",
                          "\"" + rule + "\" is not one of stop, dead-letter");
    std::string file = config.get_string("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE");
    if (file.empty())
        throw ConfigError(
            "PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE",
            "must name a file when PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD is dead-letter");
    if (!open) return nullptr;
    try {
        return std::make_shared<UnreadableRecordFile>(file);
    } catch (const std::runtime_error& e) {
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE", e.what());
    }
}

PostgresListenerSettings settings_of(const Config& config, bool open_files) {
    PostgresListenerSettings settings;
    settings.url = config.get_url("PGSTREAM_POSTGRES_LISTENER_URL");
    settings.slot_name = config.get_string("PGSTREAM_POSTGRES_LISTENER_SLOT_NAME");
    for (char c : settings.slot_name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            throw ConfigError(
                "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME",
                "\"" + settings.slot_name + "\" may only hold lower-case letters, digits and _");
    settings.plugin = config.get_string("PGSTREAM_POSTGRES_LISTENER_PLUGIN");
    if (settings.plugin == "auto") settings.plugin.clear();
    if (!settings.plugin.empty() && settings.plugin != "pgstream" && settings.plugin != "wal2json")
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_PLUGIN",
                          "\"" + settings.plugin + "\" is not one of auto, pgstream, wal2json");
    settings.pack_bytes = config.get_size("PGSTREAM_POSTGRES_LISTENER_PACK_BYTES", settings.pack_bytes);
    if (settings.pack_bytes > 1073741823)
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_PACK_BYTES",
                          "must be at most 1073741823 (the plugin's limit)");
    settings.handoff_bytes =
        config.get_size("PGSTREAM_POSTGRES_LISTENER_HANDOFF_BYTES", settings.handoff_bytes);
    settings.status_interval = config.get_duration("PGSTREAM_CHECKPOINT_INTERVAL", settings.status_interval);
    if (settings.status_interval.count() <= 0)
        throw ConfigError("PGSTREAM_CHECKPOINT_INTERVAL", "must be positive");
    settings.reconnect_initial = config.get_duration("PGSTREAM_POSTGRES_LISTENER_RECONNECT_INITIAL_INTERVAL",
                                                     settings.reconnect_initial);
    settings.reconnect_max =
        config.get_duration("PGSTREAM_POSTGRES_LISTENER_RECONNECT_MAX_INTERVAL", settings.reconnect_max);
    if (settings.reconnect_initial.count() <= 0)
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_RECONNECT_INITIAL_INTERVAL", "must be positive");
    settings.reconnect_max = std::max(settings.reconnect_max, settings.reconnect_initial);
    settings.drain_timeout = config.get_duration("PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT", settings.drain_timeout);
    settings.dead_letters = dead_letters_from(config, open_files);
    return settings;
}

}  // namespace

PostgresListenerSettings PostgresSource::settings_from(const Config& config) {
    return settings_of(config, true);
}

PostgresSource::PostgresSource(PostgresListenerSettings settings, StopToken stop)
    : settings_(std::move(settings)),
      slot_name_(settings_.slot_name.empty() ? default_slot_name(settings_.url) : settings_.slot_name),
      stop_(std::move(stop)) {}

std::string PostgresSource::run(Processor& head) {
    if (stop_.stop_requested()) return {};
    PostgresListener listener(settings_, head, watermark_, stop_);
    {
        std::lock_guard<std::mutex> lock(listener_mutex_);
        listener_ = &listener;
    }
    std::string error = listener.run();
    std::lock_guard<std::mutex> lock(listener_mutex_);
    last_observed_ = {listener.stats().server_wal_end.load(), listener.stats().reconnects.load()};
    listener_ = nullptr;
    return error;
}

PostgresSource::Observed PostgresSource::observed() const {
    std::lock_guard<std::mutex> lock(listener_mutex_);
    if (!listener_) return last_observed_;
    return {listener_->stats().server_wal_end.load(std::memory_order_relaxed),
            listener_->stats().reconnects.load(std::memory_order_relaxed)};
}

void PostgresSource::observe(Metrics& metrics) {
    MetricLabels slot{{"replication_slot", slot_name_}};
    metrics.observe_gauge("pgstream.replication.lag", "By",
                          "Bytes of WAL the server has written past the slot's confirmed position", slot,
                          [this] {
                              uint64_t server_end = observed().server_wal_end;
                              uint64_t confirmed = watermark_.confirmed().value;
                              return server_end > confirmed ? double(server_end - confirmed) : 0.0;
                          });
    metrics.observe_gauge("pgstream.replication.confirmed_lsn", "By",
                          "The slot's confirmed position (an LSN as a byte offset)", slot,
                          [this] { return double(watermark_.confirmed().value); });
    metrics.observe_counter("pgstream.replication.reconnects", "{reconnect}",
                            "Replication connections re-established after a loss", slot,
                            [this] { return double(observed().reconnects); });
}

std::string PostgresSource::readiness() const {
    std::lock_guard<std::mutex> lock(listener_mutex_);
    if (!listener_) return "not streaming";
    return listener_->connection_problem();
}

std::string PostgresSource::status_json() const {
    Observed now = observed();
    uint64_t confirmed = watermark_.confirmed().value;
    return "{\"replication_slot\":" + json_quote(slot_name_) +
           ",\"confirmed_lsn\":" + json_quote(watermark_.confirmed().str()) +
           ",\"server_wal_end\":" + json_quote(Lsn(now.server_wal_end).str()) + ",\"lag_bytes\":" +
           std::to_string(now.server_wal_end > confirmed ? now.server_wal_end - confirmed : 0) +
           ",\"units_in_flight\":" + std::to_string(watermark_.units_in_flight()) + "}";
}

void PostgresSource::stop() {
    stop_.request_stop();
}

void register_postgres_source_module() {
    SourceModule module;
    module.name = "postgres listener";
    module.settings = {
        {"PGSTREAM_POSTGRES_LISTENER_URL", "",
         "PostgreSQL URL or conninfo of the database to stream (selects this source)"},
        {"PGSTREAM_POSTGRES_LISTENER_SLOT_NAME", "pgstream_<dbname>_slot", "replication slot to read"},
        {"PGSTREAM_POSTGRES_LISTENER_PLUGIN", "auto", "output plugin of the slot: auto, pgstream, wal2json"},
        {"PGSTREAM_POSTGRES_LISTENER_PACK_BYTES", "65536",
         "pgstream plugin: records packed per replication message"},
        {"PGSTREAM_POSTGRES_LISTENER_HANDOFF_BYTES", "8MiB",
         "received, not yet processed replication messages"},
        {"PGSTREAM_POSTGRES_LISTENER_RECONNECT_INITIAL_INTERVAL", "500ms", "first wait before reconnecting"},
        {"PGSTREAM_POSTGRES_LISTENER_RECONNECT_MAX_INTERVAL", "30s", "longest wait between reconnections"},
        {"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD", "stop",
         "stop or dead-letter on a record that cannot be read"},
        {"PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE", "", "where dead-lettered records go"},
        {"PGSTREAM_CHECKPOINT_INTERVAL", "1s", "interval of standby status updates (confirmed position)"},
    };
    for (auto& setting : snapshot_setting_docs()) module.settings.push_back(std::move(setting));
    module.yaml =
        YamlSection{"source", "postgres",
                    [](const std::string& rest) -> std::string {
                        if (rest == "URL") return "PGSTREAM_POSTGRES_LISTENER_URL";
                        // source.postgres.snapshot.{enabled,tables,excluded_tables,workers,...}
                        if (rest == "SNAPSHOT_ENABLED")
                            return "PGSTREAM_POSTGRES_LISTENER_INITIAL_SNAPSHOT_ENABLED";
                        if (rest == "SNAPSHOT_TABLES") return "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES";
                        if (rest.rfind("SNAPSHOT_", 0) == 0) return "PGSTREAM_POSTGRES_" + rest;
                        if (rest == "REPLICATION_REPLICATION_SLOT" || rest == "REPLICATION_SLOT_NAME" ||
                            rest == "SLOT_NAME" || rest == "REPLICATION_SLOT")
                            return "PGSTREAM_POSTGRES_LISTENER_SLOT_NAME";
                        if (rest == "REPLICATION_PLUGIN" || rest == "REPLICATION_PLUGIN_NAME")
                            return "PGSTREAM_POSTGRES_LISTENER_PLUGIN";
                        return "PGSTREAM_POSTGRES_LISTENER_" + rest;
                    },
                    ""};
    module.configured = [](const Config& config) { return config.has("PGSTREAM_POSTGRES_LISTENER_URL"); };
    module.validate = [](const Config& config) {
        settings_of(config, false);
        SnapshotSettings::from(config);
    };
    module.create = [](const Config& config, RuntimeContext& context) -> std::unique_ptr<Source> {
        return std::make_unique<PostgresSource>(PostgresSource::settings_from(config), context.stop());
    };
    register_source_module(std::move(module));
}

}  // namespace pgstream
