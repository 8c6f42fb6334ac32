// Translator: decorates the next processor with pgstream metadata from pgstream.schema_log.
//
//  * inserts into pgstream.schema_log are parsed, acknowledged in the store (acked = true), cached as the
//    schema's latest version, and forwarded (outputs see schema changes in stream order);
//  * data events get column ids ("<table id>-<attnum>"), the table's pgstream id, the identity column ids
//    (IdFinder: primary key, else the first unique not-null column) and a version (VersionFinder: the LSN);
//  * every other write to the pgstream schema (table_ids, the acks' own updates) is dropped and acknowledged.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "checkpoint/acknowledger.h"
#include "processor/processor.h"
#include "processor/translator/schema_log.h"

namespace pgstream {

// Chooses the columns that identify a row of `table`; empty when none can. The answer may depend on the table
// only: the translator asks once per table of each acknowledged schema version and reuses it for every row.
class IdFinder {
  public:
    virtual ~IdFinder() = default;
    virtual std::vector<const SchemaColumn*> identity_columns(const SchemaTable& table) const = 0;
};

// Primary key columns, else the first unique not-null column (in column order).
class PrimaryKeyIdFinder : public IdFinder {
  public:
    std::vector<const SchemaColumn*> identity_columns(const SchemaTable& table) const override;
};

// The version an output uses to order writes of the same row (search indexing uses external versions).
class VersionFinder {
  public:
    virtual ~VersionFinder() = default;
    virtual std::string version(const Event& event, const SchemaTable& table) const = 0;
};

// The change's LSN as text ("0/16B3748").
class LsnVersionFinder : public VersionFinder {
  public:
    std::string version(const Event& event, const SchemaTable& table) const override;
};

struct TranslatorStats {
    std::atomic<uint64_t> translated{0};
    std::atomic<uint64_t> schema_changes{0};
    std::atomic<uint64_t> without_identity{0};  // forwarded with an empty id_col_pgstream_id
    std::atomic<uint64_t> without_schema{0};    // forwarded untranslated: no acked schema_log entry/table
    std::atomic<uint64_t> hidden{0};            // other pgstream-schema writes, dropped
    // Gauge: tables whose UPDATE/DELETE PostgreSQL cannot decode, in the schemas changed since the start.
    std::atomic<uint64_t> tables_without_replica_identity{0};
};

class Translator : public Processor {
  public:
    Translator(std::unique_ptr<SchemaLogStore> store, Processor& next, Acknowledger& acknowledger,
               std::unique_ptr<IdFinder> id_finder = nullptr,
               std::unique_ptr<VersionFinder> version_finder = nullptr);

    std::string name() const override { return "translator"; }
    void process(EventPtr event) override;
    void flush() override { next_.flush(); }
    void source_idle() override { next_.source_idle(); }
    void close() override { next_.close(); }
    std::string fatal_error() const override { return next_.fatal_error(); }

    const TranslatorStats& stats() const { return stats_; }

    // Builds the schema_log entry an insert event carries. Throws JsonError when it is malformed.
    static SchemaLogEntry entry_from_event(const Event& event);

  private:
    void handle_schema_change(EventPtr event);
    void warn_undecodable_tables(const SchemaLogEntry& entry);
    const SchemaLogEntry* schema_for(const std::string& schema_name);

    std::unique_ptr<SchemaLogStore> store_;
    Processor& next_;
    Acknowledger& acknowledger_;
    std::unique_ptr<IdFinder> id_finder_;
    std::unique_ptr<VersionFinder> version_finder_;
    // Latest acked entry per schema; std::nullopt caches "the store has none".
    std::map<std::string, std::optional<SchemaLogEntry>> cache_;
    // The identity column ids of each table in cache_ (asking the IdFinder per row cost a vector and a column
    // search each time); cleared whenever an entry of cache_ is replaced.
    std::unordered_map<const SchemaTable*, std::vector<std::string>> identity_ids_;
    std::set<std::string> warned_tables_;
    // Per schema, the tables without a replica identity already warned about.
    std::map<std::string, std::set<std::string>> undecodable_tables_;
    TranslatorStats stats_;
};

}  // namespace pgstream
