#include "processor/translator/schema_log.h"

#include "util/log.h"

namespace pgstream {

const SchemaColumn* SchemaTable::find_column(const std::string& column_name) const {
    for (const auto& column : columns)
        if (column.name == column_name) return &column;
    return nullptr;
}

const SchemaTable* SchemaLogEntry::find_table(const std::string& table_name) const {
    for (const auto& table : tables)
        if (table.name == table_name) return &table;
    return nullptr;
}

namespace {

std::string text_of(const JsonValue* value) {
    if (!value || value->is_null()) return {};
    return value->text;
}

std::vector<std::string> strings_of(const JsonValue* value) {
    std::vector<std::string> out;
    if (value && value->is_array())
        for (const auto& item : value->items) out.push_back(item.text);
    return out;
}

}  // namespace

void parse_schema_document(const std::string& json, SchemaLogEntry& entry) {
    JsonValue root = parse_json(json);
    if (!root.is_object()) throw JsonError("schema is not a JSON object");
    if (const JsonValue* dropped = root.find("dropped")) entry.dropped = dropped->as_bool();
    entry.tables.clear();
    const JsonValue* tables = root.find("tables");
    if (!tables || !tables->is_array()) return;
    for (const auto& item : tables->items) {
        SchemaTable table;
        table.oid = text_of(item.find("oid"));
        table.name = text_of(item.find("name"));
        table.pgstream_id = text_of(item.find("pgstream_id"));
        if (const JsonValue* columns = item.find("columns"); columns && columns->is_array()) {
            for (const auto& c : columns->items) {
                SchemaColumn column;
                column.pgstream_id = text_of(c.find("pgstream_id"));
                column.name = text_of(c.find("name"));
                column.type = text_of(c.find("type"));
                const JsonValue* nullable = c.find("nullable");
                column.nullable = !nullable || nullable->as_bool();
                const JsonValue* unique = c.find("unique");
                column.unique = unique && unique->as_bool();
                table.columns.push_back(std::move(column));
            }
        }
        table.primary_key_columns = strings_of(item.find("primary_key_columns"));
        table.unique_not_null_columns = strings_of(item.find("unique_not_null_columns"));
        entry.tables.push_back(std::move(table));
    }
}

PostgresSchemaLogStore::PostgresSchemaLogStore(std::string url, StopToken stop)
    : url_(std::move(url)), stop_(std::move(stop)) {}

PGconn* PostgresSchemaLogStore::connection() {
    if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return conn_.get();
    conn_ = pg::connect(url_, false, "pgstream translator");
    auto exists = pg::exec(conn_.get(), "SELECT to_regclass('pgstream.schema_log') IS NOT NULL");
    table_exists_ = pg::value(exists.get(), 0, 0).value_or("f") == "t";
    return conn_.get();
}

template <typename Fn>
auto PostgresSchemaLogStore::with_retry(Fn&& fn) -> decltype(fn(static_cast<PGconn*>(nullptr))) {
    // Store outages block the pipeline (and thus the source) rather than lose schema information.
    auto delay = std::chrono::milliseconds(200);
    for (int attempt = 1;; ++attempt) {
        try {
            return fn(connection());
        } catch (const pg::Error& e) {
            bool connection_broken = !conn_ || PQstatus(conn_.get()) != CONNECTION_OK;
            // About two minutes of retries covers a PostgreSQL restart; then the run stops (exit 1).
            if (!connection_broken || attempt >= 30) throw;
            conn_.reset();
            if (!stop_.stop_requested()) {
                log::warn("translator: schema log store unavailable (", e.what(), "); retrying in ",
                          delay.count(), "ms");
                if (stop_.sleep_for(delay)) {
                    delay = std::min(delay * 2, std::chrono::milliseconds(5000));
                    continue;
                }
            }
            // The event waiting for its schema is not taken: the source sends it again on the next start.
            throw Stopped(std::string("translator: stopped while the schema log store is unavailable (") +
                          e.what() + ")");
        }
    }
}

std::optional<SchemaLogEntry> PostgresSchemaLogStore::latest_acked(const std::string& schema_name) {
    std::lock_guard<std::mutex> lock(mutex_);
    return with_retry([&](PGconn* conn) -> std::optional<SchemaLogEntry> {
        if (!table_exists_) return std::nullopt;
        auto result = pg::exec(conn,
                               "SELECT id, version, schema_name, schema::text FROM pgstream.schema_log "
                               "WHERE schema_name = $1 AND acked ORDER BY version DESC LIMIT 1",
                               {schema_name});
        if (PQntuples(result.get()) == 0) return std::nullopt;
        SchemaLogEntry entry;
        entry.id = pg::value(result.get(), 0, 0).value_or("");
        entry.version = std::stoll(pg::value(result.get(), 0, 1).value_or("0"));
        entry.schema_name = pg::value(result.get(), 0, 2).value_or("");
        parse_schema_document(pg::value(result.get(), 0, 3).value_or("{}"), entry);
        return entry;
    });
}

void PostgresSchemaLogStore::ack(const SchemaLogEntry& entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    with_retry([&](PGconn* conn) {
        pg::exec(conn, "UPDATE pgstream.schema_log SET acked = true WHERE id = $1 AND schema_name = $2 AND NOT acked",
                 {entry.id, entry.schema_name});
        return 0;
    });
}

}  // namespace pgstream
