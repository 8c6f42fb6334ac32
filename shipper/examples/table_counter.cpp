// Using libpgstream as a library: a custom output plugged behind the stock translator and filter.
//
//   pgstream-example-table_counter POSTGRES_URL SLOT EVENTS
//
// Streams from an existing slot (create it with `pgstream init`), counts row changes per table and action,
// stops after EVENTS row changes (or on Ctrl-C) and prints one "schema.table action count" line per group.
// Every event is acknowledged once counted, so the slot's confirmed position advances behind the counter.
#include <csignal>
#include <iostream>
#include <map>
#include <mutex>

#include "pipeline/pipeline.h"
#include "processor/filter/filter.h"
#include "processor/translator/translator.h"

namespace {

// An output: counts events, acknowledges each one through the checkpointer, and stops the source when it
// has seen enough.
class TableCounter : public pgstream::Processor {
  public:
    TableCounter(pgstream::Acknowledger& acknowledger, long limit) : acknowledger_(acknowledger), limit_(limit) {}

    std::string name() const override { return "table counter"; }

    void process(pgstream::EventPtr event) override {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!event->is_schema_log() && event->action != pgstream::Action::Message) {
            std::string key = event->schema + "." + event->table + " " + static_cast<char>(event->action);
            ++counts_[key];
            if (!event->metadata.id_col_pgstream_ids.empty()) ++with_identity_;
            if (++seen_ == limit_ && on_limit) on_limit();
        }
        acknowledger_.acknowledge(*event);
    }

    void print(std::ostream& out) {
        std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [key, count] : counts_) out << key << " " << count << "\n";
        out << "with identity " << with_identity_ << "\n";
    }

    std::function<void()> on_limit;

  private:
    pgstream::Acknowledger& acknowledger_;
    long limit_;
    long seen_ = 0;
    long with_identity_ = 0;
    std::map<std::string, long> counts_;
    std::mutex mutex_;
};

// A custom IdFinder: identify rows by a column named "uuid" when a table has one, else the default rule.
class UuidFirstIdFinder : public pgstream::IdFinder {
  public:
    std::vector<const pgstream::SchemaColumn*> identity_columns(const pgstream::SchemaTable& table) const override {
        if (const auto* uuid = table.find_column("uuid")) return {uuid};
        return fallback_.identity_columns(table);
    }

  private:
    pgstream::PrimaryKeyIdFinder fallback_;
};

pgstream::Source* g_source = nullptr;

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: " << argv[0] << " POSTGRES_URL SLOT EVENTS\n";
        return 2;
    }
    pgstream::PostgresListenerSettings settings;
    settings.url = argv[1];
    settings.slot_name = argv[2];
    long limit = std::stol(argv[3]);

    // The source owns the checkpointer every stage acknowledges through.
    pgstream::PostgresSource source(settings);
    g_source = &source;
    pgstream::Acknowledger& acknowledger = source.acknowledger();

    TableCounter counter(acknowledger, limit);
    counter.on_limit = [&source] { source.stop(); };
    pgstream::FilterSettings filter_settings;
    filter_settings.exclude_schemas = {"audit"};
    pgstream::Filter filter(filter_settings, counter, acknowledger);
    pgstream::Translator translator(std::make_unique<pgstream::PostgresSchemaLogStore>(settings.url), filter,
                                    acknowledger, std::make_unique<UuidFirstIdFinder>());

    std::signal(SIGINT, [](int) { g_source->stop(); });
    std::string error = source.run(translator);
    if (!error.empty()) {
        std::cerr << "table_counter: " << error << "\n";
        return 1;
    }
    counter.print(std::cout);
    return 0;
}
