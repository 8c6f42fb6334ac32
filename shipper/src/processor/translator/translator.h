// Translator: decorates the next processor with pgstream metadata from pgstream.schema_log.
//
//  * a row change at LSN L is translated with the version of its schema in force at L: the newest version
//  whose
//    wal_position is below L. Versions are read from the store for the first row of a schema (and again when
//    a row falls outside the versions held), so a stream that starts anywhere (a restart, a second slot, a
//    replay) gets the ids of its rows' time, not those of the newest version;
//  * inserts into pgstream.schema_log (pgstream.schema_log_entries since extension 0.5.0) are parsed,
//  acknowledged in the store (acked = true), added to the versions held, and forwarded as pgstream.schema_log
//  with the whole document (a delta is composed with the version before it) in stream order;
//  * data events get column ids ("<table id>-<attnum>"), the table's pgstream id, the identity column ids
//    (IdFinder: primary key, else the first unique not-null column) and a version (VersionFinder: the LSN);
//  * every other write to the pgstream schema (table_ids, the acks' own updates) is dropped and acknowledged.
#pragma once

#include <atomic>
#include <chrono>
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
    // Also the translator's own health: polled by the source every 200 ms, it looks at the store now and
    // then, so that DROP EXTENSION pgstream stops the run even while no row needs the store.
    std::string fatal_error() const override;

    const TranslatorStats& stats() const { return stats_; }

    // Builds the schema_log entry an insert event carries. Throws JsonError when it is malformed.
    static SchemaLogEntry entry_from_event(const Event& event);

    // Versions held per schema; past it the oldest are forgotten (and read again if a row needs them).
    static constexpr size_t kVersionsHeldPerSchema = 16;

  private:
    // The versions of one schema held in memory. For every position L in [valid_from, valid_until) the newest
    // of them written before L is the version in force at L.
    struct SchemaHistory {
        bool loaded = false;
        std::vector<std::shared_ptr<const SchemaLogEntry>> versions;  // in wal_position (then version) order
        Lsn valid_from;
        // Unset: nothing newer is known to the store than the last version; the stream brings the next ones.
        std::optional<Lsn> valid_until;
    };

    void handle_schema_change(MutableEventPtr event);
    const SchemaLogEntry* schema_for(const std::string& schema_name, Lsn position);
    void load(SchemaHistory& history, const std::string& schema_name, Lsn position);
    void add_version(SchemaLogEntry entry);
    bool compose_from_history(SchemaLogEntry& delta);
    bool compose_from_store(SchemaLogEntry& delta);
    static void set_schema_document(Event& event, std::string document);
    void warn_undecodable_tables(const SchemaLogEntry& entry);

    std::unique_ptr<SchemaLogStore> store_;
    Processor& next_;
    Acknowledger& acknowledger_;
    std::unique_ptr<IdFinder> id_finder_;
    std::unique_ptr<VersionFinder> version_finder_;
    std::map<std::string, SchemaHistory> histories_;  // never erased from: its histories stay where they are
    // The history schema_for used last, and its schema's name: rows come in runs of one schema.
    SchemaHistory* last_history_ = nullptr;
    std::string last_history_name_;
    // What the translator writes into every event of a table, made once per table of a schema version and
    // shared by its events (a reference count each instead of a string copy per column per row).
    struct TableHeads {
        SharedText schema_id;
        SharedText table_id;
        std::vector<SharedText> column_ids;  // in the order of SchemaTable::columns
        // The columns' names, interned like the snapshot's (snapshot/snapshotter.cpp): a snapshot row's
        // column is found by comparing pointers, not characters.
        std::vector<SharedText> column_names;
        SharedTextList identity_ids;  // the IdFinder's answer
    };
    const TableHeads& heads_for(const SchemaLogEntry& entry, const SchemaTable& table);

    // The heads of each table of each version held in histories_; cleared whenever a version is let go. By
    // version and table: versions composed from deltas share their unchanged tables (SchemaTables), and the
    // heads name the version (schema_id).
    struct HeadsKey {
        const SchemaLogEntry* entry;
        const SchemaTable* table;
        bool operator==(const HeadsKey& other) const { return entry == other.entry && table == other.table; }
    };
    struct HeadsKeyHash {
        size_t operator()(const HeadsKey& key) const {
            return std::hash<const void*>()(key.entry) * 31 + std::hash<const void*>()(key.table);
        }
    };
    std::unordered_map<HeadsKey, TableHeads, HeadsKeyHash> table_heads_;
    // The table of a held version named `table_name` (SchemaLogEntry::find_table scans the version's tables:
    // with thousands of tables in a schema that was thousands of comparisons per row). Each version's tables
    // are indexed by name on its first row; a name held twice finds the first table, as the scan does.
    const SchemaTable* find_table(const SchemaLogEntry& entry, const std::string& table_name);
    std::unordered_map<const SchemaLogEntry*, std::unordered_map<std::string_view, const SchemaTable*>>
        tables_by_name_;
    // The last table found: rows come in runs of one table (a transaction's, a snapshot range's), and one
    // comparison is cheaper than hashing the name.
    struct LastFound {
        const SchemaLogEntry* entry = nullptr;
        std::string table_name;
        const SchemaTable* table = nullptr;
    } last_found_;
    // Drops what is derived from the held versions (table_heads_, tables_by_name_), keyed by their addresses:
    // called whenever a version is let go.
    void forget_derived_from_versions();
    mutable std::chrono::steady_clock::time_point next_store_check_{};
    mutable std::string store_gone_;  // SchemaLogGone's message once seen
    std::set<std::string> warned_tables_;
    // Per schema, the tables without a replica identity already warned about.
    std::map<std::string, std::set<std::string>> undecodable_tables_;
    TranslatorStats stats_;
};

}  // namespace pgstream
