#include "pipeline/pipeline.h"

#include <algorithm>
#include <thread>

#include "processor/fanout.h"
#include "util/log.h"

namespace pgstream {

std::unique_ptr<Pipeline> Pipeline::build(const Config& config) {
    config.check_conflicts();
    std::unique_ptr<Pipeline> pipeline(new Pipeline());
    pipeline->stop_ =
        StopToken(config.get_duration("PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT", std::chrono::milliseconds(30000)));
    const StopToken& stop = pipeline->stop_;
    pipeline->metrics_ = std::make_unique<Metrics>();
    // The shared HTTP client (the webhook notifier's) on up to 4 lanes: libcurl's per-request work keeps one
    // thread a whole core busy at ~14k requests/s; more lanes than cores would only add threads.
    HttpClientSettings http_settings;
    http_settings.threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4);
    pipeline->context_ =
        std::make_unique<RuntimeContext>(*pipeline->metrics_, stop, std::move(http_settings));
    RuntimeContext& context = *pipeline->context_;

    // Every configured module checks its settings before any is built: configuration errors come first.
    const SourceModule* source_module = nullptr;
    for (const auto& module : registered_sources()) {
        if (module.configured(config)) {
            source_module = &module;
            break;
        }
    }
    if (!source_module)
        throw ConfigError("",
                          "no listener configured: set PGSTREAM_POSTGRES_LISTENER_URL (or the Kafka reader's "
                          "PGSTREAM_KAFKA_SERVERS, PGSTREAM_KAFKA_TOPIC_NAME and "
                          "PGSTREAM_KAFKA_READER_CONSUMER_GROUP_ID)");
    std::vector<const OutputModule*> output_modules;
    for (const auto& module : registered_outputs())
        if (module.configured(config)) output_modules.push_back(&module);
    if (output_modules.empty())
        throw ConfigError(
            "",
            "no processor configured: set PGSTREAM_STDOUT_WRITER_ENABLED=true (or configure the "
            "Kafka writer with PGSTREAM_KAFKA_SERVERS and PGSTREAM_KAFKA_TOPIC_NAME, or the search indexer "
            "with PGSTREAM_OPENSEARCH_STORE_URL or PGSTREAM_ELASTICSEARCH_STORE_URL)");
    if (source_module->validate) source_module->validate(config);
    for (const auto* module : output_modules)
        if (module->validate) module->validate(config);

    register_config_keys(observability_config_keys());
    auto observability = ObservabilitySettings::from(config);
    context.set_metrics_enabled(observability.metrics_wanted());

    pipeline->source_ = source_module->create(config, context);
    Acknowledger& acknowledger = pipeline->source_->acknowledger();
    for (const auto* module : output_modules)
        pipeline->outputs_.push_back(module->create(config, acknowledger, context));

    pipeline->observability_ = std::make_unique<PipelineObservability>(observability, *pipeline->metrics_);
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
    if (auto* postgres = dynamic_cast<PostgresSource*>(pipeline->source_.get())) {
        pipeline->snapshot_settings_ = SnapshotSettings::from(config);
        Snapshotter::Target target;
        target.url = postgres->settings().url;
        target.slot_name = postgres->slot_name();
        target.plugin = postgres->settings().plugin;
        pipeline->snapshotter_ = std::make_unique<Snapshotter>(pipeline->snapshot_settings_, target, *head,
                                                               postgres->checkpoint_router(), stop);
    }
    if (observability.metrics_wanted()) {
        Metrics& metrics = *pipeline->metrics_;
        if (pipeline->snapshotter_) pipeline->snapshotter_->observe(metrics);
        pipeline->source_->observe(metrics);
        const Filter& filter = *pipeline->filter_;
        for (Action action :
             {Action::Insert, Action::Update, Action::Delete, Action::Truncate, Action::Message})
            metrics.observe_counter("pgstream.filter.events.dropped", "{event}",
                                    "Events the filter dropped (PGSTREAM_FILTER_* settings)",
                                    {{"action", action_label(action)}},
                                    [&filter, action] { return double(filter.dropped(action)); });
        if (Translator* translator = pipeline->translator_.get()) {
            const TranslatorStats& stats = translator->stats();
            metrics.observe_counter("pgstream.schema.versions.applied", "{version}",
                                    "Schema versions (pgstream.schema_log rows) the translator applied", {},
                                    [&stats] { return double(stats.schema_changes.load()); });
            metrics.observe_counter("pgstream.translator.events.without_schema", "{event}",
                                    "Events passed on without pgstream metadata (no schema version describes "
                                    "their table)",
                                    {}, [&stats] { return double(stats.without_schema.load()); });
            metrics.observe_counter("pgstream.translator.events.hidden", "{event}",
                                    "Writes to pgstream's own tables other than schema versions, dropped", {},
                                    [&stats] { return double(stats.hidden.load()); });
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
            std::make_unique<InstrumentedProcessor>(*output, target_name(output->name()), *metrics_));
}

void Pipeline::serve_health(HealthServer& server) {
    server.add_readiness_check(source_->name() == "postgres listener" ? "postgres_source" : "source",
                               [this] { return source_->readiness(); });
    for (auto& output : outputs_) {
        Processor* processor = output.get();
        server.add_readiness_check(target_name(processor->name()), [processor] {
            std::string failure = processor->fatal_error();
            return failure.empty() ? processor->readiness() : failure;
        });
    }
    server.add_status_section(
        "phase", [this] { return std::string(snapshotting_.load() ? "\"snapshot\"" : "\"replication\""); });
    if (snapshotter_) server.add_status_section("snapshot", [this] { return snapshotter_->status_json(); });
    server.add_status_section("source", [this] { return source_->status_json(); });
}

std::vector<std::string> Pipeline::describe() const {
    std::vector<std::string> stages{source_->name()};
    if (translator_) stages.push_back("translator");
    stages.push_back("filter");
    for (const auto& output : outputs_) stages.push_back(output->name());
    return stages;
}

std::vector<std::pair<std::string, std::string>> Pipeline::readiness() const {
    std::vector<std::pair<std::string, std::string>> failing;
    if (std::string why = source_->readiness(); !why.empty()) failing.emplace_back(source_->name(), why);
    for (const auto& output : outputs_)
        if (std::string why = output->readiness(); !why.empty()) failing.emplace_back(output->name(), why);
    return failing;
}

std::string Pipeline::start() {
    for (auto& output : outputs_) output->start();
    std::string stages;
    for (const auto& stage : describe()) stages += (stages.empty() ? "" : " → ") + stage;
    log::info("pipeline: ", stages);
    if (HealthServer* health = observability_->health_server()) serve_health(*health);
    try {
        observability_->start();
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

void Pipeline::finish() {
    // The source drained the outputs (as far as the drain deadline allowed) before its final checkpoint: what
    // they still hold is not waited for, and their threads end now.
    stop_.end_drain();
    head_->close();
    observability_->stop();
}

std::string Pipeline::run_snapshot(bool one_off) {
    if (!snapshotter_) return "the snapshot needs the PostgreSQL source (PGSTREAM_POSTGRES_LISTENER_URL)";
    snapshotting_ = true;
    std::string error = snapshotter_->run(one_off);
    snapshotting_ = false;
    return error;
}

std::string Pipeline::run() {
    if (std::string error = start(); !error.empty()) return error;
    std::string error;
    // The snapshot first: the stream starts where it ends (a new slot) or repeats what it holds (reconciled
    // by version, docs/snapshot.md).
    if (snapshot_settings_.enabled) error = run_snapshot(false);
    if (error.empty()) error = source_->run(*head_);
    finish();
    return error;
}

std::string Pipeline::snapshot_only() {
    if (snapshot_settings_.tables.empty())
        throw ConfigError(
            "PGSTREAM_POSTGRES_INITIAL_SNAPSHOT_TABLES",
            "must list the tables to snapshot (*, schema.*, name or schema.name, comma-separated)");
    if (std::string error = start(); !error.empty()) return error;
    std::string error = run_snapshot(true);
    finish();
    return error;
}

void Pipeline::stop() {
    stop_.request_stop();
    source_->stop();  // a source that does not watch the token
}

}  // namespace pgstream
