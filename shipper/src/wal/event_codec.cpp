#include "wal/event_codec.h"

#include <algorithm>
#include <charconv>
#include <cstring>

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
        if (const JsonValue* ids = metadata->find("id_col_pgstream_id"); ids && ids->is_array()) {
            std::vector<std::string> identity_ids;
            for (const auto& id : ids->items) identity_ids.push_back(id.text);
            event.metadata.id_col_pgstream_ids = std::move(identity_ids);
        }
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
// (checked with a comparison, so a stale rendering can never be written; the shared texts of a table's rows
// are the very same objects, which compare without reading a character).
struct RenderedColumnHead {
    SharedText id, name, type;
    std::string json;
};

struct RenderedTableHead {
    std::string schema, table;
    std::string json;  // ,"schema":…,"table":…,"columns":
};

struct RenderedMetadataHead {
    SharedText schema_id;
    SharedText table_id;
    SharedTextList identity_ids;
    std::string json;  // ,"metadata":{"schema_id":…,"table_pgstream_id":…,"id_col_pgstream_id":[…],"version":
};

// A transaction's events share their commit LSN, a snapshot's rows all their positions.
struct RenderedLsn {
    Lsn lsn;
    char text[Lsn::kMaxTextSize];
    size_t size = 0;
};

struct RenderCache {
    std::vector<RenderedColumnHead> columns[2];  // new values, identity
    RenderedLsn lsns[3];                         // lsn, commit_lsn, snapshot lsn
    RenderedTableHead table;
    RenderedMetadataHead metadata;
};

char* write_text(char* at, std::string_view text) {
    std::memcpy(at, text.data(), text.size());
    return at + text.size();
}

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
        append_json_string(cached.json, column.id.view());
        cached.json += ",\"name\":";
        append_json_string(cached.json, column.name.view());
        cached.json += ",\"type\":";
        append_json_string(cached.json, column.type.view());
        cached.json += ",\"value\":";
    }
    return cached.json;
}

// Validates the cached heads of `columns` (a comparison each, usually of the very same shared texts) and
// returns the most bytes write_columns writes for them.
size_t columns_bound(const std::vector<Column>& columns, std::vector<RenderedColumnHead>& cache) {
    if (cache.size() < columns.size()) cache.resize(columns.size());
    size_t bound = 2;
    for (size_t i = 0; i < columns.size(); ++i)
        bound += 2 + column_head(cache[i], columns[i]).size() + columns[i].value.json_bound();
    return bound;
}

// After columns_bound on the same columns and cache.
char* write_columns(char* at, const std::vector<Column>& columns,
                    const std::vector<RenderedColumnHead>& cache) {
    *at++ = '[';
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i) *at++ = ',';
        at = write_text(at, cache[i].json);
        at = columns[i].value.write_json(at);
        *at++ = '}';
    }
    *at++ = ']';
    return at;
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
            append_json_string(cached.json, metadata.schema_id.view());
        cached.json += ",\"table_pgstream_id\":";
        append_json_string(cached.json, metadata.table_pgstream_id.view());
        cached.json += ",\"id_col_pgstream_id\":[";
        for (size_t i = 0; i < metadata.id_col_pgstream_ids.size(); ++i) {
            if (i) cached.json += ',';
            append_json_string(cached.json, metadata.id_col_pgstream_ids[i]);
        }
        cached.json += "],\"version\":";
    }
    return cached.json;
}

char* write_lsn(char* at, Lsn lsn, RenderedLsn& cached) {
    if (!lsn.valid()) return write_text(at, "null");
    if (cached.size == 0 || cached.lsn != lsn) {
        cached.lsn = lsn;
        cached.size = size_t(lsn.write_to(cached.text) - cached.text);
    }
    *at++ = '"';
    at = write_text(at, std::string_view(cached.text, cached.size));  // hex digits and a slash: no escapes
    *at++ = '"';
    return at;
}

// The fixed parts of an event object (member names, action, the two LSNs, the snapshot's id and position)
// take fewer bytes than this.
constexpr size_t kFixedPartsBound = 320;

// The event is written into room sized for its worst case (one size computation and one resize per event)
// rather than by a std::string append per piece, each an out-of-line call. `Out`: std::string or
// EventJsonBuffer (size, resize, data).
template <class Out>
void append_event_json_to(Out& out, const Event& event) {
    RenderCache& cache = render_cache();
    const std::string& table = table_head(cache.table, event);
    const std::string& metadata = metadata_head(cache.metadata, event.metadata);
    size_t bound = kFixedPartsBound + std::max<size_t>(event.xid.size(), 4) +
                   json_string_bound(event.timestamp.size()) + table.size() +
                   columns_bound(event.columns, cache.columns[0]) +
                   columns_bound(event.identity, cache.columns[1]) + metadata.size() +
                   json_string_bound(event.metadata.version.size());
    size_t start = out.size();
    out.resize(start + bound);
    char* at = out.data() + start;
    at = write_text(at, "{\"action\":\"");
    *at++ = static_cast<char>(event.action);
    at = write_text(at, "\",\"xid\":");
    at = write_text(at, event.xid.empty() ? std::string_view("null") : std::string_view(event.xid));
    at = write_text(at, ",\"timestamp\":");
    at = event.timestamp.empty() ? write_text(at, "null") : write_json_string(at, event.timestamp.view());
    at = write_text(at, ",\"lsn\":");
    at = write_lsn(at, event.lsn, cache.lsns[0]);
    at = write_text(at, ",\"commit_lsn\":");
    at = write_lsn(at, event.commit_lsn, cache.lsns[1]);
    at = write_text(at, table);
    at = write_columns(at, event.columns, cache.columns[0]);
    at = write_text(at, ",\"identity\":");
    at = write_columns(at, event.identity, cache.columns[1]);
    if (event.action == Action::Message) {
        // Rare: the message fields go through the string functions, then the rest gets its room again.
        std::string message = ",\"prefix\":";
        append_json_string(message, event.prefix);
        append_message_content(message, event.content);
        message += ",\"transactional\":";
        message += event.transactional ? "true" : "false";
        start = size_t(at - out.data());
        out.resize(start + message.size() + kFixedPartsBound + metadata.size() +
                   json_string_bound(event.metadata.version.size()));
        at = write_text(out.data() + start, message);
    }
    at = write_text(at, metadata);
    at = write_json_string(at, event.metadata.version);
    if (event.metadata.is_snapshot()) {
        at = write_text(at, ",\"snapshot\":{\"id\":");
        at = std::to_chars(at, at + 20, event.metadata.snapshot_id).ptr;
        at = write_text(at, ",\"lsn\":");
        at = write_lsn(at, event.metadata.snapshot_lsn, cache.lsns[2]);
        *at++ = '}';
    }
    at = write_text(at, "}}");
    out.resize(size_t(at - out.data()));
}

}  // namespace

void append_event_json(std::string& out, const Event& event) {
    append_event_json_to(out, event);
}

void EventJsonBuffer::append_event(const Event& event) {
    append_event_json_to(*this, event);
}

void EventJsonBuffer::resize(size_t size) {
    // Doubling: a batch's lines grow the room a few times, then it is reused as it is.
    if (size > room_.size()) room_.resize(std::max(size, 2 * room_.size()));
    used_ = size;
}

std::string event_to_json(const Event& event) {
    std::string out;
    out.reserve(512);
    append_event_json(out, event);
    return out;
}

}  // namespace pgstream
