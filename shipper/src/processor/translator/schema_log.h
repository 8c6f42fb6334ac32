// The schema_log model (one version of a schema's description, written by the pgstream event triggers) and
// the store the translator reads and acknowledges it through.
#pragma once

#include <initializer_list>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "processor/translator/replica_identity.h"
#include "util/pg.h"
#include "util/stop_token.h"
#include "wal/json.h"
#include "wal/lsn.h"

namespace pgstream {

struct SchemaColumn {
    std::string pgstream_id;  // "<table pgstream id>-<attnum>"
    std::string name;
    std::string type;
    bool nullable = true;
    bool unique = false;
};

struct SchemaTable {
    std::string oid;
    std::string name;
    std::string pgstream_id;
    std::vector<SchemaColumn> columns;  // attnum order
    std::vector<std::string> primary_key_columns;
    std::vector<std::string> unique_not_null_columns;
    // The whole description as PostgreSQL prints the jsonb, shared by the versions that keep the table, so
    // that a version composed from a delta can be forwarded as the whole document (whole_document_json).
    std::shared_ptr<const std::string> json;

    const SchemaColumn* find_column(const std::string& column_name) const;
    // The position of the column named `column_name` in `columns`; columns.size() when there is none.
    size_t column_index(const std::string& column_name) const;
};

// The tables of a version, in name order. It behaves as a std::vector<SchemaTable>, but versions share the
// descriptions they have in common: copying the list, or composing a version from a delta (apply_delta),
// copies one pointer per table, not the tables, so a delta's cost grows with the tables it changes, not with
// the schema. A write through a non-const access first copies a description that another list shares (copy on
// write); the lists of one description are not meant to be written from several threads at once.
class SchemaTables {
  public:
    class const_iterator {
      public:
        using iterator_category = std::forward_iterator_tag;
        using value_type = SchemaTable;
        using difference_type = std::ptrdiff_t;
        using pointer = const SchemaTable*;
        using reference = const SchemaTable&;
        explicit const_iterator(std::vector<std::shared_ptr<SchemaTable>>::const_iterator at) : at_(at) {}
        reference operator*() const { return **at_; }
        pointer operator->() const { return at_->get(); }
        const_iterator& operator++() {
            ++at_;
            return *this;
        }
        bool operator==(const const_iterator& other) const { return at_ == other.at_; }
        bool operator!=(const const_iterator& other) const { return at_ != other.at_; }

      private:
        std::vector<std::shared_ptr<SchemaTable>>::const_iterator at_;
    };

    SchemaTables() = default;
    SchemaTables(
        std::vector<SchemaTable> tables);  // NOLINT(google-explicit-constructor): a vector's stand-in
    SchemaTables(std::initializer_list<SchemaTable> tables)
        : SchemaTables(std::vector<SchemaTable>(tables)) {}

    size_t size() const { return tables_.size(); }
    bool empty() const { return tables_.empty(); }
    void clear() { tables_.clear(); }
    void reserve(size_t count) { tables_.reserve(count); }
    void push_back(SchemaTable table) { tables_.push_back(std::make_shared<SchemaTable>(std::move(table))); }
    const SchemaTable& operator[](size_t index) const { return *tables_[index]; }
    SchemaTable& operator[](size_t index);  // copies the description first if another list shares it
    const_iterator begin() const { return const_iterator(tables_.begin()); }
    const_iterator end() const { return const_iterator(tables_.end()); }

    // These tables without the ones whose oid is in `left_out`, and the `changed` ones merged in by name
    // (both lists in name order; a table of this list goes before a changed one of the same name). The kept
    // tables are shared, not copied.
    SchemaTables merged(const std::set<std::string>& left_out, SchemaTables changed) const;

  private:
    std::vector<std::shared_ptr<SchemaTable>> tables_;
};

struct SchemaLogEntry {
    std::string id;
    int64_t version = 0;
    std::string schema_name;
    // schema_log.wal_position: where the version was written. It is in force for the row changes after it.
    // Lsn() for versions logged before the column existed (older than every positioned version).
    Lsn wal_position;
    SchemaTables tables;
    bool dropped = false;
    // A delta version (pgstream.schema_versions = delta): `tables` holds only the changed tables and
    // `removed_oids` the tables that left; the whole schema is version `delta_base` with both applied.
    std::optional<int64_t> delta_base;
    std::vector<std::string> removed_oids;
    // The document's other arrays (0013: "sequences", "materialized_views"), kept as jsonb text so that the
    // composed whole document equals pgstream.schema_log's; a delta holds the changed ones
    // ("changed_<kind>"). Absent in documents written before 0013 (has_other_objects false): then not written
    // either.
    struct OtherObject {
        std::string oid, name, json;
    };
    bool has_other_objects = false;
    std::vector<OtherObject> sequences, materialized_views;

    const SchemaTable* find_table(const std::string& table_name) const;
};

// Parses the `schema` jsonb document ({"tables":[...]}, {"tables":null,"dropped":true}, or a delta
// {"delta":{"base_version":N,"removed":[oid...]},"changed":[...]}). Throws JsonError.
void parse_schema_document(const std::string& json, SchemaLogEntry& entry);

// Turns the delta `delta` into the whole schema: the tables of `base` (its version delta_base) without the
// removed and the changed ones, plus the changed ones, in name order as pgstream orders them. Throws
// JsonError when `base` is not the version the delta was made from.
void apply_delta(const SchemaLogEntry& base, SchemaLogEntry& delta);

// The whole document of a version that is not a delta, byte for byte what pgstream.schema_log shows:
// {"tables": [...]} (tables in their order, each as parsed) or the dropped marker.
std::string whole_document_json(const SchemaLogEntry& entry);

// The versions of one schema a stream position needs: the version in force at that position (the newest
// written before it, if any), then the versions written after it, in version order.
struct SchemaVersions {
    std::vector<SchemaLogEntry> entries;
    // The store had more versions after the last entry (a page limit); their first one was written here.
    std::optional<Lsn> more_from;
};

// schema_log is gone from a database that had it (DROP EXTENSION pgstream, DROP SCHEMA pgstream): no version
// can be read or acknowledged any more. The run stops with this message.
class SchemaLogGone : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class SchemaLogStore {
  public:
    virtual ~SchemaLogStore() = default;
    // The version in force at `position` and at most `limit` - 1 later ones. Throws on store failure
    // (SchemaLogGone when the table was dropped).
    virtual SchemaVersions versions_from(const std::string& schema_name, Lsn position, size_t limit) = 0;
    // Marks a version as seen by the shipper. Throws on store failure.
    virtual void ack(const SchemaLogEntry& entry) = 0;
    // False when the database has no schema tracking at all (no pgstream.schema_log table).
    virtual bool tracks_schemas() const { return true; }
    // Throws SchemaLogGone when a store that had schema tracking lost it; any other failure (the server is
    // unreachable) is left to the next read. Cheap, without retries: called now and then from a health check.
    virtual void check_present() {}
    // Tables of the entry's schema whose UPDATE/DELETE PostgreSQL cannot decode, as the catalog is once the
    // entry's transaction is visible; empty when the store cannot tell.
    virtual std::vector<UndecodableTable> undecodable_tables(const SchemaLogEntry&) { return {}; }
    // The whole document of a stored version (pgstream.schema_log composes it from the deltas); nullopt when
    // the store cannot tell. Throws on store failure.
    virtual std::optional<std::string> whole_document(const SchemaLogEntry&) { return std::nullopt; }
};

// pgstream.schema_log in PostgreSQL. A call retries a lost connection for about two minutes (a server
// restart) before it throws; a stop ends the retries at once (Stopped).
class PostgresSchemaLogStore : public SchemaLogStore {
  public:
    explicit PostgresSchemaLogStore(std::string url, StopToken stop = {});
    SchemaVersions versions_from(const std::string& schema_name, Lsn position, size_t limit) override;
    void ack(const SchemaLogEntry& entry) override;
    bool tracks_schemas() const override { return table_exists_; }
    void check_present() override;
    std::vector<UndecodableTable> undecodable_tables(const SchemaLogEntry& entry) override;
    std::optional<std::string> whole_document(const SchemaLogEntry& entry) override;

  private:
    PGconn* connection();
    template <typename Fn>
    auto with_retry(Fn&& fn) -> decltype(fn(static_cast<PGconn*>(nullptr)));

    std::string url_;
    StopToken stop_;
    pg::ConnPtr conn_;
    bool table_exists_ = false;
    bool had_table_ = false;      // schema_log existed at some point of this run
    bool has_positions_ = false;  // schema_log.wal_position exists (migration 0006)
    bool warned_no_positions_ = false;
    std::mutex mutex_;
};

}  // namespace pgstream
