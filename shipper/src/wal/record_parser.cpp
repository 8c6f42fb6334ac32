#include "wal/record_parser.h"

namespace pgstream {

namespace {

std::string string_member(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    return value && value->is_string() ? value->text : std::string();
}

Lsn lsn_member(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    if (!value || value->is_null()) return Lsn();
    if (!value->is_string()) throw JsonError(std::string("\"") + std::string(key) + "\" is not an LSN string");
    auto lsn = Lsn::parse(value->text);
    if (!lsn) throw JsonError(std::string("\"") + std::string(key) + "\" is not an LSN: " + value->text);
    return *lsn;
}

std::vector<Column> columns_member(JsonValue& object, std::string_view key, bool* present) {
    std::vector<Column> columns;
    JsonValue* array = const_cast<JsonValue*>(object.find(key));
    if (present) *present = array && array->is_array();
    if (!array || array->is_null()) return columns;
    if (!array->is_array()) throw JsonError(std::string("\"") + std::string(key) + "\" is not an array");
    columns.reserve(array->items.size());
    for (auto& item : array->items) {
        if (!item.is_object()) throw JsonError(std::string("\"") + std::string(key) + "\" holds a non-object");
        Column column;
        for (auto& [name, value] : item.members) {
            if (name == "name") column.name = std::move(value.text);
            else if (name == "type") column.type = std::move(value.text);
            else if (name == "value") column.value = std::move(value);
        }
        columns.push_back(std::move(column));
    }
    return columns;
}

}  // namespace

Record parse_wal2json_record(std::string_view text) {
    JsonValue root = parse_json(text);
    if (!root.is_object()) throw JsonError("record is not a JSON object");
    const JsonValue* action = root.find("action");
    if (!action || !action->is_string() || action->text.size() != 1)
        throw JsonError("record has no \"action\" (is the slot using format-version 2?)");

    Record record;
    char code = action->text[0];
    if (code == 'B' || code == 'C') {
        record.kind = code == 'B' ? Record::Kind::Begin : Record::Kind::Commit;
        record.lsn = lsn_member(root, "lsn");
        record.next_lsn = lsn_member(root, "nextlsn");
        if (const JsonValue* xid = root.find("xid")) record.xid = xid->to_json();
        record.timestamp = string_member(root, "timestamp");
        return record;
    }
    if (code != 'I' && code != 'U' && code != 'D' && code != 'T' && code != 'M')
        throw JsonError("unknown action \"" + action->text + "\"");

    auto event = std::make_shared<Event>();
    event->action = static_cast<Action>(code);
    event->raw.assign(text.data(), text.size());
    if (const JsonValue* xid = root.find("xid")) event->xid = xid->to_json();
    event->timestamp = string_member(root, "timestamp");
    event->lsn = lsn_member(root, "lsn");
    event->schema = string_member(root, "schema");
    event->table = string_member(root, "table");
    event->columns = columns_member(root, "columns", nullptr);
    event->identity = columns_member(root, "identity", &event->has_identity);
    if (code == 'M') {
        event->prefix = string_member(root, "prefix");
        event->content = string_member(root, "content");
        if (const JsonValue* transactional = root.find("transactional"))
            event->transactional = transactional->as_bool();
    }
    record.kind = Record::Kind::Change;
    record.lsn = event->lsn;
    record.xid = event->xid;
    record.timestamp = event->timestamp;
    record.event = std::move(event);
    return record;
}

namespace {

void append_columns(std::string& out, const std::vector<Column>& columns) {
    out += '[';
    bool first = true;
    for (const auto& column : columns) {
        if (!first) out += ',';
        first = false;
        out += "{\"id\":";
        append_json_string(out, column.id);
        out += ",\"name\":";
        append_json_string(out, column.name);
        out += ",\"type\":";
        append_json_string(out, column.type);
        out += ",\"value\":";
        column.value.append_json(out);
        out += '}';
    }
    out += ']';
}

}  // namespace

void append_event_json(std::string& out, const Event& event) {
    out += "{\"action\":\"";
    out += static_cast<char>(event.action);
    out += "\",\"xid\":";
    out += event.xid.empty() ? "null" : event.xid;
    out += ",\"timestamp\":";
    if (event.timestamp.empty()) out += "null";
    else append_json_string(out, event.timestamp);
    out += ",\"lsn\":";
    if (event.lsn.valid()) append_json_string(out, event.lsn.str());
    else out += "null";
    out += ",\"commit_lsn\":";
    if (event.commit_lsn.valid()) append_json_string(out, event.commit_lsn.str());
    else out += "null";
    out += ",\"schema\":";
    append_json_string(out, event.schema);
    out += ",\"table\":";
    append_json_string(out, event.table);
    out += ",\"columns\":";
    append_columns(out, event.columns);
    out += ",\"identity\":";
    append_columns(out, event.identity);
    if (event.action == Action::Message) {
        out += ",\"prefix\":";
        append_json_string(out, event.prefix);
        out += ",\"content\":";
        append_json_string(out, event.content);
        out += ",\"transactional\":";
        out += event.transactional ? "true" : "false";
    }
    out += ",\"metadata\":{\"table_pgstream_id\":";
    append_json_string(out, event.metadata.table_pgstream_id);
    out += ",\"id_col_pgstream_id\":[";
    for (size_t i = 0; i < event.metadata.id_col_pgstream_ids.size(); ++i) {
        if (i) out += ',';
        append_json_string(out, event.metadata.id_col_pgstream_ids[i]);
    }
    out += "],\"version\":";
    append_json_string(out, event.metadata.version);
    out += "}}";
}

std::string event_to_json(const Event& event) {
    std::string out;
    out.reserve(event.raw.size() + 256);
    append_event_json(out, event);
    return out;
}

}  // namespace pgstream
