// Using libpgstream as a library: a custom output written as a module (pipeline/module.h) and run by the
// stock pipeline (PostgreSQL source → translator → filter → the output).
//
//   pgstream-example-table_counter POSTGRES_URL SLOT EVENTS [DEAD_LETTER_FILE]
//
// Streams from an existing slot (create it with `pgstream init`), counts row changes per table and action,
// stops after EVENTS row changes (or on Ctrl-C) and prints one "schema.table action count" line per group.
// It shows the output contract: a result per event (delivered, skipped, given up), a dead-letter file for
// what it gives up on (rows of tables named "refused"), readiness and the shared output metrics. Every event
// is acknowledged once it has its final result, so the slot's confirmed position advances behind the counter.
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>

#include "pipeline/module.h"
#include "pipeline/pipeline.h"
#include "processor/batching.h"
#include "processor/dead_letter.h"
#include "processor/event_result.h"

namespace {

// What the counter saw; owned by main, which prints it after the run.
struct Counts {
    std::mutex mutex;
    std::map<std::string, long> per_table_and_action;
    long with_identity = 0;
    long rows = 0;
};

struct TableCounterSettings {
    long limit = 0;
    std::string dead_letter_file;  // "" = none: giving up on an event then stops the pipeline
};

// The output. Batching, retries, dead letters and acknowledgements are the BatchSender's: the output only
// says, per event, what became of it.
class TableCounter : public pgstream::Processor {
  public:
    TableCounter(Counts& counts, const TableCounterSettings& settings, pgstream::Acknowledger& acknowledger,
                 pgstream::RuntimeContext& context)
        : counts_(counts),
          limit_(settings.limit),
          stop_(context.stop()),
          metrics_(context.output_metrics("table-counter")) {
        pgstream::BatchSettings batch;
        batch.batch_size = 500;
        batch.batch_timeout = std::chrono::milliseconds(50);
        if (!settings.dead_letter_file.empty()) {
            // A file is local: opening it here is no network I/O.
            dead_letters_ = std::make_unique<pgstream::DeadLetterFile>(settings.dead_letter_file, name());
            batch.dead_letters = dead_letters_.get();
        }
        // Every result (delivered, skipped, dead_lettered, ...) counted per action in the shared instruments.
        if (metrics_) batch.on_result = metrics_->result_recorder();
        sender_ = std::make_unique<pgstream::BatchSender>(
            name(), batch, [this](const std::vector<pgstream::EventPtr>& events) { return count(events); },
            acknowledger, pgstream::event_weight, stop_);
        if (metrics_) metrics_->observe_memory(sender_->memory());
    }
    ~TableCounter() override { sender_->close(); }

    std::string name() const override { return "table counter"; }
    void start() override { started_ = true; }
    std::string readiness() const override { return started_ ? "" : "table counter: not started yet"; }
    void process(pgstream::EventPtr event) override { sender_->submit(std::move(event)); }
    void flush() override { sender_->flush(); }
    void source_idle() override { sender_->send_pending(); }
    void close() override { sender_->close(); }
    std::string fatal_error() const override { return sender_->fatal_error(); }

  private:
    // One result per event, in the batch's order.
    std::vector<pgstream::EventResult> count(const std::vector<pgstream::EventPtr>& batch) {
        std::vector<pgstream::EventResult> results;
        results.reserve(batch.size());
        bool enough = false;
        {
            std::lock_guard<std::mutex> lock(counts_.mutex);
            for (const auto& event : batch) {
                if (event->is_schema_log() || event->action == pgstream::Action::Message) {
                    results.push_back(pgstream::EventResult::skipped("not a row change"));
                } else if (event->table == "refused") {
                    results.push_back(pgstream::EventResult::give_up(0, "the counter refuses this table"));
                } else {
                    ++counts_.per_table_and_action[event->schema + "." + event->table + " " +
                                                   static_cast<char>(event->action)];
                    if (!event->metadata.id_col_pgstream_ids.empty()) ++counts_.with_identity;
                    enough = ++counts_.rows >= limit_;
                    results.push_back(pgstream::EventResult::delivered());
                }
            }
        }
        // Outside the lock: the pipeline drains what it holds, then the source checkpoints and returns.
        if (enough) stop_.request_stop();
        return results;
    }

    Counts& counts_;
    const long limit_;
    pgstream::StopToken stop_;
    std::atomic<bool> started_{false};
    std::unique_ptr<pgstream::DeadLetterFile> dead_letters_;
    std::unique_ptr<pgstream::BatchSender> sender_;
    // Declared after the sender: destroyed first, it stops reading the sender's memory guard.
    std::unique_ptr<pgstream::OutputMetrics> metrics_;
};

TableCounterSettings settings_from(const pgstream::Config& config) {
    TableCounterSettings settings;
    settings.limit = long(config.get_int("PGSTREAM_TABLE_COUNTER_LIMIT", 0, 1));
    settings.dead_letter_file = config.get_string("PGSTREAM_TABLE_COUNTER_DEAD_LETTER_FILE");
    return settings;
}

void register_table_counter(Counts& counts) {
    pgstream::OutputModule module;
    module.name = "table counter";
    module.settings = {
        {"PGSTREAM_TABLE_COUNTER_LIMIT", "", "row changes to count before stopping"},
        {"PGSTREAM_TABLE_COUNTER_DEAD_LETTER_FILE", "", "where rows of tables named \"refused\" go"},
    };
    module.configured = [](const pgstream::Config& config) {
        return config.has("PGSTREAM_TABLE_COUNTER_LIMIT");
    };
    module.validate = [](const pgstream::Config& config) { settings_from(config); };  // no I/O
    module.create = [&counts](const pgstream::Config& config, pgstream::Acknowledger& acknowledger,
                              pgstream::RuntimeContext& context) -> std::unique_ptr<pgstream::Processor> {
        return std::make_unique<TableCounter>(counts, settings_from(config), acknowledger, context);
    };
    pgstream::register_output_module(std::move(module));
}

pgstream::Pipeline* g_pipeline = nullptr;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 && argc != 5) {
        std::cerr << "usage: " << argv[0] << " POSTGRES_URL SLOT EVENTS [DEAD_LETTER_FILE]\n";
        return 2;
    }
    // Registration is explicit, before the configuration is read: the modules' settings are its known keys.
    pgstream::register_builtin_modules();
    Counts counts;
    register_table_counter(counts);

    std::map<std::string, std::string> values{
        {"PGSTREAM_POSTGRES_LISTENER_URL", argv[1]},
        {"PGSTREAM_POSTGRES_LISTENER_SLOT_NAME", argv[2]},
        {"PGSTREAM_FILTER_EXCLUDE_SCHEMAS", "audit"},
        {"PGSTREAM_TABLE_COUNTER_LIMIT", argv[3]},
    };
    if (argc == 5) values["PGSTREAM_TABLE_COUNTER_DEAD_LETTER_FILE"] = argv[4];
    std::unique_ptr<pgstream::Pipeline> pipeline;
    try {
        pipeline = pgstream::Pipeline::build(pgstream::Config(values));
    } catch (const pgstream::ConfigError& e) {
        std::cerr << "table_counter: " << e.what() << "\n";
        return 2;
    }
    g_pipeline = pipeline.get();
    std::signal(SIGINT, [](int) { g_pipeline->stop(); });
    std::string error = pipeline->run();
    if (!error.empty()) {
        std::cerr << "table_counter: " << error << "\n";
        return 1;
    }
    for (const auto& [key, count] : counts.per_table_and_action) std::cout << key << " " << count << "\n";
    std::cout << "with identity " << counts.with_identity << "\n";
    return 0;
}
