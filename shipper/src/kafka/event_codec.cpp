#include "kafka/event_codec.h"

#include "wal/record_parser.h"

namespace pgstream::kafka {

namespace {

std::string stringMember(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    return value != nullptr && value->is_string() ? value->text : std::string();
}

Lsn lsnMember(const JsonValue& object, std::string_view key) {
    const JsonValue* value = object.find(key);
    if (value == nullptr || !value->is_string()) return Lsn();
    auto lsn = Lsn::parse(value->text);
    if (!lsn) throw JsonError(std::string("\"") + std::string(key) + "\" is not an LSN: " + value->text);
    return *lsn;
}

std::vector<Column> columnsMember(const JsonValue& object, std::string_view key, bool* present) {
    std::vector<Column> columns;
    const JsonValue* array = object.find(key);
    if (present != nullptr) *present = array != nullptr && array->is_array();
    if (array == nullptr || array->is_null()) return columns;
    if (!array->is_array()) throw JsonError(std::string("\"") + std::string(key) + "\" is not an array");
    for (const auto& item : array->items) {
        if (!item.is_object())
            throw JsonError(std::string("\"") + std::string(key) + "\" holds a non-object");
        Column column;
        for (const auto& [name, value] : item.members) {
            if (name == "id") {
                column.id = value.text;
            } else if (name == "name") {
                column.name = value.text;
            } else if (name == "type") {
                column.type = value.text;
            } else if (name == "value") {
                column.value = value;
            }
        }
        columns.push_back(std::move(column));
    }
    return columns;
}

}  // namespace

std::string kafkaKey(const Event& event) {
    if (event.is_schema_log()) {
        // A schema change is ordered with the data of the schema it describes, not with pgstream's own
        // schema.
        if (const Column* schema_name = event.find_column("schema_name");
            schema_name != nullptr && schema_name->value.is_string()) {
            return schema_name->value.text;
        }
    }
    return event.schema;
}

void appendKafkaValue(std::string& out, const Event& event) {
    append_event_json(out, event);
}

EventPtr eventFromKafkaValue(std::string_view value) {
    JsonValue root = parse_json(value);
    if (!root.is_object()) throw JsonError("record is not a JSON object");
    const JsonValue* action = root.find("action");
    if (action == nullptr || !action->is_string() || action->text.size() != 1) {
        throw JsonError("record has no one-letter \"action\"");
    }
    const char code = action->text[0];
    if (code != 'I' && code != 'U' && code != 'D' && code != 'T' && code != 'M') {
        throw JsonError("unknown action \"" + action->text + "\"");
    }
    auto event = std::make_shared<Event>();
    event->action = static_cast<Action>(code);
    if (const JsonValue* xid = root.find("xid")) event->xid = xid->to_json();
    event->timestamp = stringMember(root, "timestamp");
    event->lsn = lsnMember(root, "lsn");
    event->commit_lsn = lsnMember(root, "commit_lsn");
    event->schema = stringMember(root, "schema");
    event->table = stringMember(root, "table");
    event->columns = columnsMember(root, "columns", nullptr);
    event->identity = columnsMember(root, "identity", &event->has_identity);
    if (code == 'M') {
        event->prefix = stringMember(root, "prefix");
        event->content =
            message_content(stringMember(root, "content"), stringMember(root, "content_encoding"));
        if (const JsonValue* transactional = root.find("transactional")) {
            event->transactional = transactional->as_bool();
        }
    }
    if (const JsonValue* metadata = root.find("metadata"); metadata != nullptr && metadata->is_object()) {
        event->metadata.table_pgstream_id = stringMember(*metadata, "table_pgstream_id");
        if (const JsonValue* ids = metadata->find("id_col_pgstream_id"); ids != nullptr && ids->is_array()) {
            for (const auto& id : ids->items) event->metadata.id_col_pgstream_ids.push_back(id.text);
        }
        event->metadata.version = stringMember(*metadata, "version");
        if (event->metadata.version.empty())
            event->metadata.version = stringMember(*metadata, "version_col_pgstream_id");
        if (const JsonValue* snapshot = metadata->find("snapshot");
            snapshot != nullptr && snapshot->is_object()) {
            if (const JsonValue* id = snapshot->find("id"); id != nullptr && id->is_number())
                event->metadata.snapshot_id = std::stoull(id->text);
            event->metadata.snapshot_lsn = Lsn::parse(stringMember(*snapshot, "lsn")).value_or(Lsn());
        }
    }
    return event;
}

}  // namespace pgstream::kafka
