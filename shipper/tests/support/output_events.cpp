#include "output_events.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstring>

namespace pgstream_it {

namespace {

std::string to_json(const rapidjson::Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

std::string string_member(const rapidjson::Value& object, const char* name) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd()) return {};
    if (it->value.IsString()) return std::string(it->value.GetString(), it->value.GetStringLength());
    if (it->value.IsNull()) return {};
    return to_json(it->value);
}

std::vector<OutputColumn> parse_columns(const rapidjson::Value& object, const char* name) {
    std::vector<OutputColumn> columns;
    auto it = object.FindMember(name);
    if (it == object.MemberEnd() || !it->value.IsArray()) return columns;
    for (const auto& item : it->value.GetArray()) {
        if (!item.IsObject()) continue;
        OutputColumn column;
        column.id = string_member(item, "id");
        column.name = string_member(item, "name");
        column.type = string_member(item, "type");
        auto value = item.FindMember("value");
        column.value_json = value == item.MemberEnd() ? "null" : to_json(value->value);
        columns.push_back(std::move(column));
    }
    return columns;
}

const OutputColumn* find(const std::vector<OutputColumn>& columns, const std::string& name) {
    for (const auto& column : columns) {
        if (column.name == name) return &column;
    }
    return nullptr;
}

}  // namespace

std::string OutputColumn::value_text() const {
    rapidjson::Document doc;
    doc.Parse(value_json.c_str(), value_json.size());
    if (!doc.HasParseError() && doc.IsString()) return std::string(doc.GetString(), doc.GetStringLength());
    return value_json;
}

const OutputColumn* OutputEvent::column(const std::string& name) const {
    return find(columns, name);
}

const OutputColumn* OutputEvent::identity_column(const std::string& name) const {
    return find(identity, name);
}

std::optional<std::string> OutputEvent::value(const std::string& name) const {
    const OutputColumn* c = column(name);
    return c != nullptr ? std::optional<std::string>(c->value_text()) : std::nullopt;
}

std::optional<std::string> OutputEvent::identity_value(const std::string& name) const {
    const OutputColumn* c = identity_column(name);
    return c != nullptr ? std::optional<std::string>(c->value_text()) : std::nullopt;
}

std::optional<OutputEvent> parse_event(const std::string& line, std::string* error) {
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    if (doc.HasParseError() || !doc.IsObject()) {
        if (error != nullptr) *error = "not a JSON object: " + line.substr(0, 300);
        return std::nullopt;
    }
    OutputEvent event;
    event.raw = line;
    event.action = string_member(doc, "action");
    auto xid = doc.FindMember("xid");
    if (xid != doc.MemberEnd() && xid->value.IsInt64()) event.xid = xid->value.GetInt64();
    event.timestamp = string_member(doc, "timestamp");
    event.lsn = string_member(doc, "lsn");
    event.commit_lsn = string_member(doc, "commit_lsn");
    event.schema = string_member(doc, "schema");
    event.table = string_member(doc, "table");
    event.prefix = string_member(doc, "prefix");
    event.content = string_member(doc, "content");
    event.content_encoding = string_member(doc, "content_encoding");
    event.columns = parse_columns(doc, "columns");
    event.identity = parse_columns(doc, "identity");
    auto metadata = doc.FindMember("metadata");
    if (metadata != doc.MemberEnd() && metadata->value.IsObject()) {
        event.has_metadata = true;
        event.table_pgstream_id = string_member(metadata->value, "table_pgstream_id");
        auto ids = metadata->value.FindMember("id_col_pgstream_id");
        if (ids != metadata->value.MemberEnd() && ids->value.IsArray()) {
            for (const auto& id : ids->value.GetArray()) {
                event.id_col_pgstream_ids.push_back(id.IsString() ? id.GetString() : to_json(id));
            }
        }
        auto version = metadata->value.FindMember("version");
        if (version != metadata->value.MemberEnd() && !version->value.IsNull()) {
            event.version_json = to_json(version->value);
        }
    }
    return event;
}

std::optional<int64_t> int_column(const std::string& line, const char* name) {
    // Looks for {"...","name":"<name>",...,"value":<int>} inside "columns" (the first occurrence of the name
    // in the line, which precedes "identity" in the contract's field order); falls back to a full parse
    // otherwise.
    std::string needle = std::string("\"name\":\"") + name + "\"";
    size_t columns_at = line.find("\"columns\"");
    size_t at = columns_at == std::string::npos ? std::string::npos : line.find(needle, columns_at);
    if (at != std::string::npos) {
        size_t close = line.find('}', at);
        size_t value_at = line.find("\"value\":", at);
        if (value_at != std::string::npos && value_at < close) {
            const char* start = line.c_str() + value_at + 8;
            char* end = nullptr;
            long long value = strtoll(start, &end, 10);
            if (end != start && (*end == '}' || *end == ',')) return value;
        }
    }
    auto event = parse_event(line);
    if (!event) return std::nullopt;
    const OutputColumn* column = event->column(name);
    if (column == nullptr) return std::nullopt;
    try {
        size_t used = 0;
        long long value = std::stoll(column->value_text(), &used);
        if (used == column->value_text().size()) return value;
    } catch (...) {
    }
    return std::nullopt;
}

}  // namespace pgstream_it
