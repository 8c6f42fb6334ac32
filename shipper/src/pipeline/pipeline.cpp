#include "pipeline/pipeline.h"

#include "processor/fanout.h"
#include "util/log.h"
#include "wal/json.h"

namespace pgstream {

namespace {

// Listener settings added after config.cpp's list of keys (kept here, next to where they are read).
struct ListenerKeyRegistration {
    ListenerKeyRegistration() {
        register_config_keys({"PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD",
                              "PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE"});
    }
} listener_key_registration;

// PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=stop|dead-letter; null for stop.
std::shared_ptr<DeadLetterFile> dead_letters_from(const Config& config) {
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
    try {
        return std::make_shared<DeadLetterFile>(file);
    } catch (const std::runtime_error& e) {
        throw ConfigError("PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE", e.what());
    }
}

}  // namespace

PostgresListenerSettings PostgresSource::settings_from(const Config& config) {
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
    settings.dead_letters = dead_letters_from(config);
    return settings;
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

namespace {

BatchSettings batch_settings(const Config& config, const std::string& prefix, BatchSettings defaults) {
    BatchSettings settings = defaults;
    settings.max_queue_bytes = config.get_size(prefix + "_MAX_QUEUE_BYTES", defaults.max_queue_bytes);
    settings.batch_size = size_t(config.get_int(prefix + "_BATCH_SIZE", int64_t(defaults.batch_size), 1));
    settings.batch_bytes = config.get_size(prefix + "_BATCH_BYTES", defaults.batch_bytes);
    settings.batch_timeout = config.get_duration(prefix + "_BATCH_TIMEOUT", defaults.batch_timeout);
    if (settings.max_queue_bytes == 0) throw ConfigError(prefix + "_MAX_QUEUE_BYTES", "must be positive");
    if (settings.batch_bytes == 0) throw ConfigError(prefix + "_BATCH_BYTES", "must be positive");
    if (settings.max_queue_bytes < settings.batch_bytes)
        throw ConfigError(prefix + "_MAX_QUEUE_BYTES", "must be at least " + prefix + "_BATCH_BYTES (" +
                                                           std::to_string(settings.batch_bytes) + ")");
    return settings;
}

}  // namespace

std::unique_ptr<Pipeline> Pipeline::build(const Config& config) {
    config.check_conflicts();
    std::unique_ptr<Pipeline> pipeline(new Pipeline());
    pipeline->stop_ =
        StopToken(config.get_duration("PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT", std::chrono::milliseconds(30000)));
    const StopToken& stop = pipeline->stop_;

    // Source.
    if (config.has("PGSTREAM_POSTGRES_LISTENER_URL")) {
        pipeline->source_ = std::make_unique<PostgresSource>(PostgresSource::settings_from(config), stop);
    } else {
        for (const auto& factory : registered_sources()) {
            if (factory.configured(config)) {
                pipeline->source_ = factory.create(config, stop);
                break;
            }
        }
    }
    if (!pipeline->source_)
        throw ConfigError("",
                          "no listener configured: set PGSTREAM_POSTGRES_LISTENER_URL (or the Kafka reader's "
                          "PGSTREAM_KAFKA_SERVERS, PGSTREAM_KAFKA_TOPIC_NAME and "
                          "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID)");
    Acknowledger& acknowledger = pipeline->source_->acknowledger();

    // Outputs.
    if (config.get_bool("PGSTREAM_STDOUT_WRITER_ENABLED", false)) {
        StdoutWriterSettings settings;
        settings.file = config.get_string("PGSTREAM_STDOUT_WRITER_FILE", "-");
        BatchSettings defaults;
        // A write(2) per 1000 lines: a fifth less CPU per row than per 100 at catch-up speed. Latency does
        // not suffer: a partial batch is written as soon as the listener has nothing more (source_idle).
        defaults.batch_size = 1000;
        defaults.batch_timeout = std::chrono::milliseconds(100);
        settings.batch = batch_settings(config, "PGSTREAM_STDOUT_WRITER", defaults);
        try {
            pipeline->outputs_.push_back(std::make_unique<StdoutWriter>(settings, acknowledger, stop));
        } catch (const std::runtime_error& e) {
            throw ConfigError("PGSTREAM_STDOUT_WRITER_FILE", e.what());
        }
    }
    for (const auto& factory : registered_outputs())
        if (factory.configured(config))
            pipeline->outputs_.push_back(factory.create(config, acknowledger, stop));
    if (pipeline->outputs_.empty())
        throw ConfigError(
            "",
            "no processor configured: set PGSTREAM_STDOUT_WRITER_ENABLED=true (or configure the "
            "Kafka writer with PGSTREAM_KAFKA_SERVERS and PGSTREAM_KAFKA_TOPIC_NAME)");

    register_config_keys(observability_config_keys());
    auto observability = ObservabilitySettings::from(config);
    pipeline->observability_ = std::make_unique<PipelineObservability>(observability, pipeline->metrics_);
    // Instruments cost a little per event: only when something reads them.
    if (observability.metrics_wanted()) pipeline->instrument_outputs();

    Processor* head;
    std::vector<Processor*> outputs;
    for (auto& output : pipeline->outputs_) outputs.push_back(output.get());
    for (size_t i = 0; i < pipeline->instrumented_.size(); ++i) outputs[i] = pipeline->instrumented_[i].get();
    if (outputs.size() == 1) {
        head = outputs.front();
    } else {
        pipeline->fan_out_ = std::make_unique<FanOut>(std::move(outputs), acknowledger);
        head = pipeline->fan_out_.get();
    }

    FilterSettings filter;
    filter.include_schemas = config.get_list("PGSTREAM_FILTER_INCLUDE_SCHEMAS");
    filter.exclude_schemas = config.get_list("PGSTREAM_FILTER_EXCLUDE_SCHEMAS");
    filter.include_tables = config.get_list("PGSTREAM_FILTER_INCLUDE_TABLES");
    filter.exclude_tables = config.get_list("PGSTREAM_FILTER_EXCLUDE_TABLES");
    pipeline->filter_ = std::make_unique<Filter>(filter, *head, acknowledger);
    head = pipeline->filter_.get();

    // The translator runs when it has a schema_log store: the explicit URL, else the listener's database.
    std::string store_url = config.get_url("PGSTREAM_TRANSLATOR_STORE_POSTGRES_URL");
    bool translator_enabled = config.get_bool("PGSTREAM_TRANSLATOR_ENABLED", true);
    if (store_url.empty()) store_url = pipeline->source_->default_schema_log_url();
    if (translator_enabled && !store_url.empty()) {
        pipeline->translator_ = std::make_unique<Translator>(
            std::make_unique<PostgresSchemaLogStore>(store_url, stop), *head, acknowledger);
        head = pipeline->translator_.get();
    }
    pipeline->head_ = head;
    if (observability.metrics_wanted()) {
        pipeline->source_->observe(pipeline->metrics_);
        if (Translator* translator = pipeline->translator_.get()) {
            Metrics& metrics = pipeline->metrics_;
            const TranslatorStats& stats = translator->stats();
            metrics.observe_counter("pgstream.schema.versions.applied", "{version}",
                                    "Schema versions (pgstream.schema_log rows) the translator applied", {},
                                    [&stats] { return double(stats.schema_changes.load()); });
            metrics.observe_counter("pgstream.translator.events.without_schema", "{event}",
                                    "Events passed on without pgstream metadata (no schema version describes "
                                    "their table)",
                                    {}, [&stats] { return double(stats.without_schema.load()); });
            metrics.observe_gauge(
                "pgstream.tables.without_replica_identity", "{table}",
                "Tables whose UPDATE and DELETE PostgreSQL cannot decode (no replica identity)", {},
                [&stats] { return double(stats.tables_without_replica_identity.load()); });
        }
    }
    return pipeline;
}

namespace {

// The Go pgstream's `target` attribute values, so that dashboards carry over.
std::string target_name(const std::string& output_name) {
    if (output_name == "stdout writer") return "stdout-writer";
    if (output_name == "kafka writer") return "kafka-batch-writer";
    if (output_name == "search indexer") return "search-batch-indexer";
    if (output_name == "webhook notifier") return "webhooks-notifier";
    std::string target = output_name;
    for (char& c : target)
        if (c == ' ') c = '-';
    return target;
}

}  // namespace

void Pipeline::instrument_outputs() {
    for (auto& output : outputs_)
        instrumented_.push_back(
            std::make_unique<InstrumentedProcessor>(*output, target_name(output->name()), metrics_));
}

void Pipeline::serve_health(HealthServer& server) {
    server.add_readiness_check(source_->name() == "postgres listener" ? "postgres_source" : "source",
                               [this] { return source_->readiness(); });
    for (auto& output : outputs_) {
        Processor* processor = output.get();
        server.add_readiness_check(target_name(processor->name()),
                                   [processor] { return processor->fatal_error(); });
    }
    server.add_status_section("phase", [] { return std::string("\"replication\""); });
    server.add_status_section("source", [this] { return source_->status_json(); });
}

std::vector<std::string> Pipeline::describe() const {
    std::vector<std::string> stages{source_->name()};
    if (translator_) stages.push_back("translator");
    stages.push_back("filter");
    for (const auto& output : outputs_) stages.push_back(output->name());
    return stages;
}

std::string Pipeline::run() {
    std::string stages;
    for (const auto& stage : describe()) stages += (stages.empty() ? "" : " → ") + stage;
    log::info("pipeline: ", stages);
    if (HealthServer* health = observability_->health_server()) serve_health(*health);
    try {
        observability_->start();
    } catch (const std::exception& e) {
        return e.what();
    }
    std::string error = source_->run(*head_);
    // The source drained the outputs (as far as the drain deadline allowed) before its final checkpoint: what
    // they still hold is not waited for, and their threads end now.
    stop_.end_drain();
    head_->close();
    observability_->stop();
    return error;
}

void Pipeline::stop() {
    stop_.request_stop();
    source_->stop();  // a source that does not watch the token
}

}  // namespace pgstream
