#include "processor/translator/schema_log.h"

#include <algorithm>
#include <set>

#include "util/log.h"

namespace pgstream {

const SchemaColumn* SchemaTable::find_column(const std::string& column_name) const {
    size_t index = column_index(column_name);
    return index < columns.size() ? &columns[index] : nullptr;
}

size_t SchemaTable::column_index(const std::string& column_name) const {
    for (size_t i = 0; i < columns.size(); ++i)
        if (columns[i].name == column_name) return i;
    return columns.size();
}

SchemaTables::SchemaTables(std::vector<SchemaTable> tables) {
    tables_.reserve(tables.size());
    for (auto& table : tables) tables_.push_back(std::make_shared<SchemaTable>(std::move(table)));
}

SchemaTable& SchemaTables::operator[](size_t index) {
    std::shared_ptr<SchemaTable>& table = tables_[index];
    if (table.use_count() > 1) table = std::make_shared<SchemaTable>(*table);
    return *table;
}

SchemaTables SchemaTables::merged(const std::set<std::string>& left_out, SchemaTables changed) const {
    auto by_name = [](const std::shared_ptr<SchemaTable>& a, const std::shared_ptr<SchemaTable>& b) {
        // get_schema() orders tables by name as bytes (COLLATE "C"), which std::string's operator< does too.
        return a->name < b->name;
    };
    std::stable_sort(changed.tables_.begin(), changed.tables_.end(), by_name);
    SchemaTables out;
    out.tables_.reserve(tables_.size() + changed.tables_.size());
    auto next_changed = changed.tables_.begin();
    for (const auto& table : tables_) {
        if (left_out.count(table->oid)) continue;
        for (; next_changed != changed.tables_.end() && by_name(*next_changed, table); ++next_changed)
            out.tables_.push_back(std::move(*next_changed));
        out.tables_.push_back(table);
    }
    for (; next_changed != changed.tables_.end(); ++next_changed)
        out.tables_.push_back(std::move(*next_changed));
    return out;
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

// `value` as PostgreSQL prints a jsonb ("key": value, items separated by ", "; members in the order parsed,
// which for a document read from PostgreSQL is jsonb's own).
void append_jsonb_text(std::string& out, const JsonValue& value) {
    switch (value.kind) {
        case JsonValue::Kind::Null:
            out += "null";
            return;
        case JsonValue::Kind::Bool:
        case JsonValue::Kind::Number:
            out += value.text;
            return;
        case JsonValue::Kind::String:
            append_json_string(out, value.text);
            return;
        case JsonValue::Kind::Object:
            out += '{';
            for (size_t i = 0; i < value.members.size(); ++i) {
                if (i > 0) out += ", ";
                append_json_string(out, value.members[i].first);
                out += ": ";
                append_jsonb_text(out, value.members[i].second);
            }
            out += '}';
            return;
        case JsonValue::Kind::Array:
            out += '[';
            for (size_t i = 0; i < value.items.size(); ++i) {
                if (i > 0) out += ", ";
                append_jsonb_text(out, value.items[i]);
            }
            out += ']';
            return;
    }
}

}  // namespace

namespace {

std::vector<SchemaLogEntry::OtherObject> other_objects_of(const JsonValue* array) {
    std::vector<SchemaLogEntry::OtherObject> objects;
    if (!array || !array->is_array()) return objects;
    for (const auto& item : array->items) {
        SchemaLogEntry::OtherObject object{text_of(item.find("oid")), text_of(item.find("name")), {}};
        append_jsonb_text(object.json, item);
        objects.push_back(std::move(object));
    }
    return objects;
}

// `base` without the objects whose oid is in `replaced`, plus `changed`, in name order (COLLATE "C").
std::vector<SchemaLogEntry::OtherObject> compose_other_objects(
    const std::vector<SchemaLogEntry::OtherObject>& base, std::vector<SchemaLogEntry::OtherObject> changed,
    std::set<std::string> replaced) {
    for (const auto& object : changed) replaced.insert(object.oid);
    std::vector<SchemaLogEntry::OtherObject> objects;
    for (const auto& object : base)
        if (!replaced.count(object.oid)) objects.push_back(object);
    for (auto& object : changed) objects.push_back(std::move(object));
    std::stable_sort(objects.begin(), objects.end(),
                     [](const auto& a, const auto& b) { return a.name < b.name; });
    return objects;
}

void append_other_objects(std::string& out, const char* key,
                          const std::vector<SchemaLogEntry::OtherObject>& objects) {
    out += ", \"";
    out += key;
    out += "\": [";
    for (size_t i = 0; i < objects.size(); ++i) {
        if (i > 0) out += ", ";
        out += objects[i].json;
    }
    out += "]";
}

}  // namespace

void parse_schema_document(const std::string& json, SchemaLogEntry& entry) {
    JsonValue root = parse_json(json);
    if (!root.is_object()) throw JsonError("schema is not a JSON object");
    if (const JsonValue* dropped = root.find("dropped")) entry.dropped = dropped->as_bool();
    entry.tables.clear();
    entry.delta_base.reset();
    entry.removed_oids.clear();
    entry.has_other_objects = root.find("sequences") != nullptr;
    entry.sequences = other_objects_of(root.find("sequences"));
    entry.materialized_views = other_objects_of(root.find("materialized_views"));
    const JsonValue* tables = root.find("tables");
    if (const JsonValue* delta = root.find("delta"); delta && delta->is_object()) {
        const JsonValue* base = delta->find("base_version");
        if (!base || !base->is_number()) throw JsonError("delta version without a base_version");
        entry.delta_base = std::stoll(base->text);
        entry.removed_oids = strings_of(delta->find("removed"));
        tables = root.find("changed");
        entry.sequences = other_objects_of(root.find("changed_sequences"));
        entry.materialized_views = other_objects_of(root.find("changed_materialized_views"));
    }
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
        std::string json;
        append_jsonb_text(json, item);
        table.json = std::make_shared<const std::string>(std::move(json));
        entry.tables.push_back(std::move(table));
    }
}

void apply_delta(const SchemaLogEntry& base, SchemaLogEntry& delta) {
    if (!delta.delta_base) return;
    if (base.version != *delta.delta_base || base.schema_name != delta.schema_name || base.delta_base)
        throw JsonError("schema \"" + delta.schema_name + "\" version " + std::to_string(delta.version) +
                        " is a delta of version " + std::to_string(*delta.delta_base) + ", not of version " +
                        std::to_string(base.version));
    std::set<std::string> replaced(delta.removed_oids.begin(), delta.removed_oids.end());
    delta.has_other_objects = base.has_other_objects;
    delta.sequences = compose_other_objects(base.sequences, std::move(delta.sequences), replaced);
    delta.materialized_views =
        compose_other_objects(base.materialized_views, std::move(delta.materialized_views), replaced);
    for (const auto& table : delta.tables) replaced.insert(table.oid);
    // The base's other tables are shared with it, not copied: O(changed tables) descriptions touched.
    delta.tables = base.tables.merged(replaced, std::move(delta.tables));
    delta.removed_oids.clear();
    delta.delta_base.reset();
}

std::string whole_document_json(const SchemaLogEntry& entry) {
    if (entry.dropped) return R"({"tables": null, "dropped": true})";
    size_t size = 16;
    for (const auto& table : entry.tables) size += (table.json ? table.json->size() : 4) + 2;
    std::string out;
    out.reserve(size);
    out += R"({"tables": [)";
    for (size_t i = 0; i < entry.tables.size(); ++i) {
        if (i > 0) out += ", ";
        out += entry.tables[i].json ? *entry.tables[i].json : std::string("null");
    }
    out += "]";
    if (entry.has_other_objects) {
        // jsonb's key order (shorter keys first), as pgstream.schema_log prints the document.
        append_other_objects(out, "sequences", entry.sequences);
        append_other_objects(out, "materialized_views", entry.materialized_views);
    }
    out += "}";
    return out;
}

PostgresSchemaLogStore::PostgresSchemaLogStore(std::string url, StopToken stop)
    : url_(std::move(url)), stop_(std::move(stop)) {}

namespace {

const char* const kGoneMessage =
    "pgstream.schema_log no longer exists in the source database (DROP EXTENSION pgstream or DROP SCHEMA "
    "pgstream "
    "was run): schema changes are not tracked any more, so rows cannot get their column ids. Reinstall "
    "schema "
    "tracking with `pgstream init` and start again, or set PGSTREAM_TRANSLATOR_ENABLED=false to stream "
    "without "
    "pgstream metadata";

bool is_missing_object(const pg::Error& e) {
    return e.sqlstate() == "42P01" /* undefined_table */ || e.sqlstate() == "3F000" /* invalid_schema_name */;
}

SchemaLogEntry entry_from_row(PGresult* result, int row) {
    SchemaLogEntry entry;
    entry.id = pg::value(result, row, 0).value_or("");
    entry.version = std::stoll(pg::value(result, row, 1).value_or("0"));
    entry.schema_name = pg::value(result, row, 2).value_or("");
    parse_schema_document(pg::value(result, row, 3).value_or("{}"), entry);
    entry.wal_position = Lsn::parse(pg::value(result, row, 4).value_or("0/0")).value_or(Lsn());
    return entry;
}

}  // namespace

PGconn* PostgresSchemaLogStore::connection() {
    if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return conn_.get();
    conn_ = pg::connect(url_, false, "pgstream translator");
    // Schema descriptions are compared with the stream's names, which the listener converts to UTF-8.
    PQsetClientEncoding(conn_.get(), "UTF8");
    auto found =
        pg::exec(conn_.get(),
                 "SELECT to_regclass('pgstream.schema_log') IS NOT NULL, EXISTS (SELECT FROM pg_attribute "
                 "WHERE attrelid = to_regclass('pgstream.schema_log') AND attname = 'wal_position' "
                 "AND NOT attisdropped)");
    table_exists_ = pg::value(found.get(), 0, 0).value_or("f") == "t";
    has_positions_ = pg::value(found.get(), 0, 1).value_or("f") == "t";
    if (had_table_ && !table_exists_) throw SchemaLogGone(kGoneMessage);
    had_table_ = had_table_ || table_exists_;
    if (table_exists_ && !has_positions_ && !warned_no_positions_) {
        warned_no_positions_ = true;
        log::warn(
            "translator: pgstream.schema_log has no wal_position column (schema tracking older than 0.2.0): "
            "rows are translated with the latest acknowledged version, which is wrong for rows replayed from "
            "before a DDL; run ALTER EXTENSION pgstream UPDATE (or `pgstream init` on a plain install)");
    }
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
            if (had_table_ && is_missing_object(e)) throw SchemaLogGone(kGoneMessage);
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

SchemaVersions PostgresSchemaLogStore::versions_from(const std::string& schema_name, Lsn position,
                                                     size_t limit) {
    std::lock_guard<std::mutex> lock(mutex_);
    return with_retry([&](PGconn* conn) {
        SchemaVersions versions;
        if (!table_exists_) return versions;
        if (!has_positions_) {
            // Without positions the best guess is the newest version the shipper has seen in a stream.
            auto result =
                pg::exec(conn,
                         "SELECT id, version, schema_name, schema::text, '0/0' FROM pgstream.schema_log "
                         "WHERE schema_name = $1 AND acked ORDER BY version DESC LIMIT 1",
                         {schema_name});
            if (PQntuples(result.get()) > 0) versions.entries.push_back(entry_from_row(result.get(), 0));
            return versions;
        }
        // Versions of one schema are numbered in the order of their positions (both are taken under the
        // per-schema version lock), and unpositioned (older) versions count as position 0/0.
        auto result =
            pg::exec(conn,
                     "SELECT id, version, schema_name, schema::text, coalesce(wal_position, '0/0')::text "
                     "FROM pgstream.schema_log WHERE schema_name = $1 AND version >= coalesce(("
                     "SELECT max(version) FROM pgstream.schema_log WHERE schema_name = $1 "
                     "AND coalesce(wal_position, '0/0') < $2::pg_lsn), 0) "
                     "ORDER BY version LIMIT $3",
                     {schema_name, position.str(), std::to_string(limit + 1)});
        int rows = PQntuples(result.get());
        for (int row = 0; row < rows; ++row) {
            SchemaLogEntry entry = entry_from_row(result.get(), row);
            if (versions.entries.size() == limit) {
                versions.more_from = entry.wal_position;
                break;
            }
            if (entry.delta_base) {
                // A delta version: composed from the one before it, or (the first one read) by the server.
                if (!versions.entries.empty()) {
                    apply_delta(versions.entries.back(), entry);
                } else {
                    auto composed = pg::exec(conn, "SELECT pgstream.schema_at($1, $2)::text",
                                             {schema_name, std::to_string(entry.version)});
                    parse_schema_document(pg::value(composed.get(), 0, 0).value_or("{}"), entry);
                }
            }
            versions.entries.push_back(std::move(entry));
        }
        return versions;
    });
}

void PostgresSchemaLogStore::ack(const SchemaLogEntry& entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    with_retry([&](PGconn* conn) {
        pg::exec(
            conn,
            "UPDATE pgstream.schema_log SET acked = true WHERE id = $1 AND schema_name = $2 AND NOT acked",
            {entry.id, entry.schema_name});
        return 0;
    });
}

std::optional<std::string> PostgresSchemaLogStore::whole_document(const SchemaLogEntry& entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    return with_retry([&](PGconn* conn) -> std::optional<std::string> {
        if (!table_exists_) return std::nullopt;
        auto found =
            pg::exec(conn, "SELECT schema::text FROM pgstream.schema_log WHERE id = $1 AND schema_name = $2",
                     {entry.id, entry.schema_name});
        if (PQntuples(found.get()) == 0) return std::nullopt;
        return pg::value(found.get(), 0, 0);
    });
}

void PostgresSchemaLogStore::check_present() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!had_table_) return;
    bool present = true;
    try {
        auto found = pg::exec(connection(), "SELECT to_regclass('pgstream.schema_log') IS NOT NULL");
        present = pg::value(found.get(), 0, 0).value_or("f") == "t";
    } catch (const pg::Error&) {
        if (conn_ && PQstatus(conn_.get()) != CONNECTION_OK) conn_.reset();
    }
    if (!present) throw SchemaLogGone(kGoneMessage);
}

std::vector<UndecodableTable> PostgresSchemaLogStore::undecodable_tables(const SchemaLogEntry& entry) {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
        PGconn* conn = connection();
        // The stream can deliver a commit before other sessions see it (the walsender decodes the commit
        // record before the committing backend leaves the proc array): until the entry's own row is visible,
        // the catalog may still show the schema from before the change. A few milliseconds at most; bounded.
        auto entry_visible = [&] {
            auto found =
                pg::exec(conn, "SELECT count(*) FROM pgstream.schema_log WHERE id = $1 AND schema_name = $2",
                         {entry.id, entry.schema_name});
            return pg::value(found.get(), 0, 0).value_or("0") != "0";
        };
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (table_exists_ && !entry_visible() && std::chrono::steady_clock::now() < deadline)
            if (!stop_.sleep_for(std::chrono::milliseconds(5))) return {};
        return find_undecodable_tables(conn, entry.schema_name);
    } catch (const pg::Error& e) {
        log::debug("translator: cannot list the tables without a replica identity: ", e.what());
        return {};
    }
}

}  // namespace pgstream
