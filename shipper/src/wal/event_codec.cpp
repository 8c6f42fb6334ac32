#include "wal/event_codec.h"

namespace pgstream {

std::string json_string_member(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    return value && value->is_string() ? value->text : std::string();
}

Lsn json_lsn_member(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    if (!value || value->is_null()) return Lsn();
    if (!value->is_string())
        throw JsonError(std::string("\"") + std::string(key) + "\" is not an LSN string");
    auto lsn = Lsn::parse(value->text);
    if (!lsn) throw JsonError(std::string("\"") + std::string(key) + "\" is not an LSN: " + value->text);
    return *lsn;
}

namespace {

std::vector<Column> columns_member(JsonValue& object, std::string_view key, bool* present) {
    std::vector<Column> columns;
    JsonValue* array = const_cast<JsonValue*>(object.find(key));
    if (present) *present = array && array->is_array();
    if (!array || array->is_null()) return columns;
    if (!array->is_array()) throw JsonError(std::string("\"") + std::string(key) + "\" is not an array");
    columns.reserve(array->items.size());
    for (auto& item : array->items) {
        if (!item.is_object())
            throw JsonError(std::string("\"") + std::string(key) + "\" holds a non-object");
        Column column;
        for (auto& [name, value] : item.members) {
            if (name == "id")
                column.id = std::move(value.text);
            else if (name == "name")
                column.name = std::move(value.text);
            else if (name == "type")
                column.type = std::move(value.text);
            else if (name == "value")
                column.value = std::move(value);
        }
        columns.push_back(std::move(column));
    }
    return columns;
}

}  // namespace

void decode_event_object(JsonValue& root, Event& event) {
    if (const JsonValue* xid = root.find("xid")) event.xid = xid->to_json();
    event.timestamp = json_string_member(root, "timestamp");
    event.lsn = json_lsn_member(root, "lsn");
    event.commit_lsn = json_lsn_member(root, "commit_lsn");
    event.schema = json_string_member(root, "schema");
    event.table = json_string_member(root, "table");
    event.columns = columns_member(root, "columns", nullptr);
    event.identity = columns_member(root, "identity", &event.has_identity);
    if (event.action == Action::Message) {
        event.prefix = json_string_member(root, "prefix");
        event.content = message_content(json_string_member(root, "content"),
                                        json_string_member(root, "content_encoding"));
        if (const JsonValue* transactional = root.find("transactional"))
            event.transactional = transactional->as_bool();
    }
    if (const JsonValue* metadata = root.find("metadata"); metadata && metadata->is_object()) {
        event.metadata.schema_id = json_string_member(*metadata, "schema_id");
        event.metadata.table_pgstream_id = json_string_member(*metadata, "table_pgstream_id");
        if (const JsonValue* ids = metadata->find("id_col_pgstream_id"); ids && ids->is_array())
            for (const auto& id : ids->items) event.metadata.id_col_pgstream_ids.push_back(id.text);
        event.metadata.version = json_string_member(*metadata, "version");
        if (event.metadata.version.empty())
            event.metadata.version = json_string_member(*metadata, "version_col_pgstream_id");
        if (const JsonValue* snapshot = metadata->find("snapshot"); snapshot && snapshot->is_object()) {
            if (const JsonValue* id = snapshot->find("id"); id && id->is_number())
                event.metadata.snapshot_id = std::stoull(id->text);
            event.metadata.snapshot_lsn = Lsn::parse(json_string_member(*snapshot, "lsn")).value_or(Lsn());
        }
    }
}

std::shared_ptr<Event> event_from_json(std::string_view json) {
    JsonValue root = parse_json(json);
    if (!root.is_object()) throw JsonError("record is not a JSON object");
    const JsonValue* action = root.find("action");
    if (!action || !action->is_string() || action->text.size() != 1)
        throw JsonError("record has no one-letter \"action\"");
    const char code = action->text[0];
    if (code != 'I' && code != 'U' && code != 'D' && code != 'T' && code != 'M')
        throw JsonError("unknown action \"" + action->text + "\"");
    auto event = std::make_shared<Event>();
    event->action = static_cast<Action>(code);
    decode_event_object(root, *event);
    return event;
}

namespace {

// Every row of a table repeats the same column heads (`{"id":…,"name":…,"type":…,"value":`), table names and
// metadata ids; escaping them again for each row was a third of an output thread's time. Each rendering
// thread keeps the last rendering per position and reuses it while the texts it was made from are unchanged
// (checked with a plain comparison, so a stale rendering can never be written).
struct RenderedColumnHead {
    std::string id, name, type;
    std::string json;
};

struct RenderedTableHead {
    std::string schema, table;
    std::string json;  // ,"schema":…,"table":…,"columns":
};

struct RenderedMetadataHead {
    std::string schema_id;
    std::string table_id;
    std::vector<std::string> identity_ids;
    std::string json;  // ,"metadata":{"schema_id":…,"table_pgstream_id":…,"id_col_pgstream_id":[…],"version":
};

struct RenderCache {
    std::vector<RenderedColumnHead> columns[2];  // new values, identity
    RenderedTableHead table;
    RenderedMetadataHead metadata;
};

RenderCache& render_cache() {
    thread_local RenderCache cache;
    return cache;
}

const std::string& column_head(RenderedColumnHead& cached, const Column& column) {
    if (cached.json.empty() || cached.id != column.id || cached.name != column.name ||
        cached.type != column.type) {
        cached.id = column.id;
        cached.name = column.name;
        cached.type = column.type;
        cached.json = "{\"id\":";
        append_json_string(cached.json, column.id);
        cached.json += ",\"name\":";
        append_json_string(cached.json, column.name);
        cached.json += ",\"type\":";
        append_json_string(cached.json, column.type);
        cached.json += ",\"value\":";
    }
    return cached.json;
}

void append_columns(std::string& out, const std::vector<Column>& columns,
                    std::vector<RenderedColumnHead>& cache) {
    if (cache.size() < columns.size()) cache.resize(columns.size());
    out += '[';
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i) out += ',';
        out += column_head(cache[i], columns[i]);
        columns[i].value.append_json(out);
        out += '}';
    }
    out += ']';
}

const std::string& table_head(RenderedTableHead& cached, const Event& event) {
    if (cached.json.empty() || cached.schema != event.schema || cached.table != event.table) {
        cached.schema = event.schema;
        cached.table = event.table;
        cached.json = ",\"schema\":";
        append_json_string(cached.json, event.schema);
        cached.json += ",\"table\":";
        append_json_string(cached.json, event.table);
        cached.json += ",\"columns\":";
    }
    return cached.json;
}

const std::string& metadata_head(RenderedMetadataHead& cached, const EventMetadata& metadata) {
    if (cached.json.empty() || cached.table_id != metadata.table_pgstream_id ||
        cached.schema_id != metadata.schema_id || cached.identity_ids != metadata.id_col_pgstream_ids) {
        cached.schema_id = metadata.schema_id;
        cached.table_id = metadata.table_pgstream_id;
        cached.identity_ids = metadata.id_col_pgstream_ids;
        // The Go pgstream writes a schema_id it does not know (its zero xid) as null.
        cached.json = ",\"metadata\":{\"schema_id\":";
        if (metadata.schema_id.empty())
            cached.json += "null";
        else
            append_json_string(cached.json, metadata.schema_id);
        cached.json += ",\"table_pgstream_id\":";
        append_json_string(cached.json, metadata.table_pgstream_id);
        cached.json += ",\"id_col_pgstream_id\":[";
        for (size_t i = 0; i < metadata.id_col_pgstream_ids.size(); ++i) {
            if (i) cached.json += ',';
            append_json_string(cached.json, metadata.id_col_pgstream_ids[i]);
        }
        cached.json += "],\"version\":";
    }
    return cached.json;
}

void append_lsn(std::string& out, Lsn lsn) {
    if (!lsn.valid()) {
        out += "null";
        return;
    }
    out += '"';
    lsn.append_to(out);  // hex digits and a slash: nothing to escape
    out += '"';
}

}  // namespace

void append_event_json(std::string& out, const Event& event) {
    RenderCache& cache = render_cache();
    out += "{\"action\":\"";
    out += static_cast<char>(event.action);
    out += "\",\"xid\":";
    out += event.xid.empty() ? "null" : event.xid;
    out += ",\"timestamp\":";
    if (event.timestamp.empty())
        out += "null";
    else
        append_json_string(out, event.timestamp);
    out += ",\"lsn\":";
    append_lsn(out, event.lsn);
    out += ",\"commit_lsn\":";
    append_lsn(out, event.commit_lsn);
    out += table_head(cache.table, event);
    append_columns(out, event.columns, cache.columns[0]);
    out += ",\"identity\":";
    append_columns(out, event.identity, cache.columns[1]);
    if (event.action == Action::Message) {
        out += ",\"prefix\":";
        append_json_string(out, event.prefix);
        append_message_content(out, event.content);
        out += ",\"transactional\":";
        out += event.transactional ? "true" : "false";
    }
    out += metadata_head(cache.metadata, event.metadata);
    append_json_string(out, event.metadata.version);
    if (event.metadata.is_snapshot()) {
        out += ",\"snapshot\":{\"id\":";
        out += std::to_string(event.metadata.snapshot_id);
        out += ",\"lsn\":";
        append_lsn(out, event.metadata.snapshot_lsn);
        out += '}';
    }
    out += "}}";
}

std::string event_to_json(const Event& event) {
    std::string out;
    out.reserve(512);
    append_event_json(out, event);
    return out;
}

}  // namespace pgstream
