// The schema_log model (one version of a schema's description, written by the pgstream event triggers) and
// the store the translator reads and acknowledges it through.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "util/pg.h"
#include "util/stop_token.h"
#include "wal/json.h"

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

    const SchemaColumn* find_column(const std::string& column_name) const;
};

struct SchemaLogEntry {
    std::string id;
    int64_t version = 0;
    std::string schema_name;
    std::vector<SchemaTable> tables;
    bool dropped = false;

    const SchemaTable* find_table(const std::string& table_name) const;
};

// Parses the `schema` jsonb document ({"tables":[...]} or {"tables":null,"dropped":true}). Throws JsonError.
void parse_schema_document(const std::string& json, SchemaLogEntry& entry);

class SchemaLogStore {
  public:
    virtual ~SchemaLogStore() = default;
    // The latest acknowledged version of a schema, if any. Throws on store failure.
    virtual std::optional<SchemaLogEntry> latest_acked(const std::string& schema_name) = 0;
    // Marks a version as seen by the shipper. Throws on store failure.
    virtual void ack(const SchemaLogEntry& entry) = 0;
    // False when the database has no schema tracking at all (no pgstream.schema_log table).
    virtual bool tracks_schemas() const { return true; }
};

// pgstream.schema_log in PostgreSQL. A call retries a lost connection for about two minutes (a server
// restart) before it throws; a stop ends the retries at once (Stopped).
class PostgresSchemaLogStore : public SchemaLogStore {
  public:
    explicit PostgresSchemaLogStore(std::string url, StopToken stop = {});
    std::optional<SchemaLogEntry> latest_acked(const std::string& schema_name) override;
    void ack(const SchemaLogEntry& entry) override;
    bool tracks_schemas() const override { return table_exists_; }

  private:
    PGconn* connection();
    template <typename Fn>
    auto with_retry(Fn&& fn) -> decltype(fn(static_cast<PGconn*>(nullptr)));

    std::string url_;
    StopToken stop_;
    pg::ConnPtr conn_;
    bool table_exists_ = false;
    std::mutex mutex_;
};

}  // namespace pgstream
