#include "search/mapping.h"

#include <cstring>
#include <map>
#include <set>

namespace pgstream::search {

namespace {

std::string quote(std::string_view text) {
    return json_quote(text);
}

// "timestamp(3) with time zone" -> "timestamp with time zone"; the first typmod goes to `typmod`.
std::string strip_typmod(const std::string& type, std::string& typmod) {
    std::string out;
    size_t i = 0;
    while (i < type.size()) {
        if (type[i] == '(') {
            size_t close = type.find(')', i);
            if (close == std::string::npos) break;
            if (typmod.empty()) typmod = type.substr(i + 1, close - i - 1);
            i = close + 1;
        } else {
            out += type[i++];
        }
    }
    return out;
}

const std::map<std::string, FieldKind>& kinds_by_name() {
    static const std::map<std::string, FieldKind> kinds = {
        {"smallint", FieldKind::kLong},
        {"integer", FieldKind::kLong},
        {"bigint", FieldKind::kLong},
        {"int2", FieldKind::kLong},
        {"int4", FieldKind::kLong},
        {"int8", FieldKind::kLong},
        {"oid", FieldKind::kLong},
        {"real", FieldKind::kDouble},
        {"double precision", FieldKind::kDouble},
        {"float4", FieldKind::kDouble},
        {"float8", FieldKind::kDouble},
        {"numeric", FieldKind::kDouble},
        {"decimal", FieldKind::kDouble},
        {"boolean", FieldKind::kBoolean},
        {"bool", FieldKind::kBoolean},
        {"text", FieldKind::kKeyword},
        {"character varying", FieldKind::kKeyword},
        {"varchar", FieldKind::kKeyword},
        {"character", FieldKind::kKeyword},
        {"char", FieldKind::kKeyword},
        {"bpchar", FieldKind::kKeyword},
        {"\"char\"", FieldKind::kKeyword},
        {"name", FieldKind::kKeyword},
        {"citext", FieldKind::kKeyword},
        {"bytea", FieldKind::kKeyword},
        {"xml", FieldKind::kKeyword},
        {"uuid", FieldKind::kKeyword},
        {"inet", FieldKind::kKeyword},
        {"cidr", FieldKind::kKeyword},
        {"macaddr", FieldKind::kKeyword},
        {"macaddr8", FieldKind::kKeyword},
        {"money", FieldKind::kKeyword},
        {"bit", FieldKind::kKeyword},
        {"bit varying", FieldKind::kKeyword},
        {"json", FieldKind::kJsonText},
        {"jsonb", FieldKind::kJsonText},
        {"date", FieldKind::kDate},
        {"time", FieldKind::kTime},
        {"time without time zone", FieldKind::kTime},
        {"time with time zone", FieldKind::kTimeTz},
        {"timetz", FieldKind::kTimeTz},
        {"timestamp", FieldKind::kTimestamp},
        {"timestamp without time zone", FieldKind::kTimestamp},
        {"timestamp with time zone", FieldKind::kTimestampTz},
        {"timestamptz", FieldKind::kTimestampTz},
        {"vector", FieldKind::kVector},
    };
    return kinds;
}

// The date formats the converted values are written in (document_value() writes exactly these).
const char* date_format(FieldKind kind) {
    switch (kind) {
        case FieldKind::kDate:
            return "uuuu-MM-dd";
        case FieldKind::kTime:
            return "HH:mm:ss.SSSSSS";
        case FieldKind::kTimeTz:
            return "HH:mm:ss.SSSSSSXXX";
        case FieldKind::kTimestamp:
            return "uuuu-MM-dd'T'HH:mm:ss.SSSSSS";
        case FieldKind::kTimestampTz:
            return "uuuu-MM-dd'T'HH:mm:ss.SSSSSSXXX";
        default:
            return nullptr;
    }
}

// An ASCII digit (std::isdigit is a call per character and asks the locale).
constexpr bool is_ascii_digit(char c) {
    return static_cast<unsigned char>(c - '0') < 10;
}

bool is_digits(std::string_view text, size_t count) {
    if (text.size() != count) return false;
    for (char c : text)
        if (!is_ascii_digit(c)) return false;
    return true;
}

// A JSON number literal (what a long or double field can be sent as text).
bool is_json_number(std::string_view text, bool integer_only) {
    size_t i = 0;
    if (i < text.size() && text[i] == '-') ++i;
    size_t digits_start = i;
    while (i < text.size() && is_ascii_digit(text[i])) ++i;
    if (i == digits_start || (text[digits_start] == '0' && i - digits_start > 1)) return false;
    if (integer_only) return i == text.size();
    if (i < text.size() && text[i] == '.') {
        size_t frac = ++i;
        while (i < text.size() && is_ascii_digit(text[i])) ++i;
        if (i == frac) return false;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        ++i;
        if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
        size_t exp = i;
        while (i < text.size() && is_ascii_digit(text[i])) ++i;
        if (i == exp) return false;
    }
    return i == text.size();
}

// "HH:MM:SS[.f{1,6}][offset]" -> "HH:MM:SS.ffffff" + (with_offset ? "Z" | "+HH:MM" : ""); false when
// malformed or when the offset has seconds (the formats take hours and minutes).
bool convert_time(std::string_view text, bool with_offset, std::string& out) {
    if (text.size() < 8 || !is_digits(text.substr(0, 2), 2) || text[2] != ':' ||
        !is_digits(text.substr(3, 2), 2) || text[5] != ':' || !is_digits(text.substr(6, 2), 2)) {
        return false;
    }
    out.append(text.substr(0, 8));
    size_t i = 8;
    std::string fraction;
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && is_ascii_digit(text[i])) fraction += text[i++];
        if (fraction.empty() || fraction.size() > 6) return false;
    }
    fraction.resize(6, '0');
    out += '.';
    out += fraction;
    std::string_view offset = text.substr(i);
    if (!with_offset) return offset.empty();
    if (offset.size() < 3 || (offset[0] != '+' && offset[0] != '-') || !is_digits(offset.substr(1, 2), 2)) {
        return false;
    }
    std::string minutes = "00";
    if (offset.size() == 6 && offset[3] == ':' && is_digits(offset.substr(4, 2), 2)) {
        minutes = std::string(offset.substr(4, 2));
    } else if (offset.size() != 3) {
        return false;
    }
    if (offset.substr(1, 2) == "00" && minutes == "00") {
        out += 'Z';
    } else {
        out += offset.substr(0, 3);
        out += ':';
        out += minutes;
    }
    return true;
}

// wal2json prints dates and times with the walsender's DateStyle, ISO by default ("2024-01-02",
// "2024-01-02 03:04:05.5+00"). infinity and -infinity become the ends of the format's range, so that they
// sort and compare as PostgreSQL does; BC dates and years past 9999 do not fit the format.
std::optional<std::string> convert_date_time(FieldKind kind, std::string_view text) {
    const bool has_date =
        kind == FieldKind::kDate || kind == FieldKind::kTimestamp || kind == FieldKind::kTimestampTz;
    const bool has_time = kind != FieldKind::kDate;
    const bool has_offset = kind == FieldKind::kTimeTz || kind == FieldKind::kTimestampTz;
    if (has_date && (text == "infinity" || text == "-infinity")) {
        bool positive = text == "infinity";
        std::string out = positive ? "9999-12-31" : "0001-01-01";
        if (has_time) out += positive ? "T23:59:59.999999" : "T00:00:00.000000";
        if (has_offset) out += 'Z';
        return out;
    }
    std::string out;
    if (has_date) {
        if (text.size() < 10 || !is_digits(text.substr(0, 4), 4) || text[4] != '-' ||
            !is_digits(text.substr(5, 2), 2) || text[7] != '-' || !is_digits(text.substr(8, 2), 2)) {
            return std::nullopt;
        }
        out.append(text.substr(0, 10));
        if (!has_time) {
            if (text.size() != 10) return std::nullopt;
            return out;
        }
        if (text.size() < 11 || text[10] != ' ') return std::nullopt;
        out += 'T';
        text = text.substr(11);
    }
    if (!convert_time(text, has_offset, out)) return std::nullopt;
    return out;
}

// The elements of a PostgreSQL array literal ("{1,2}", "{{a,b},{c,d}}", "[0:1]={x,y}", quoted elements with
// backslash escapes), flattened; nullopt for an unquoted NULL.
std::optional<std::vector<std::optional<std::string>>> parse_array_literal(std::string_view text) {
    if (!text.empty() && text.front() == '[') {
        size_t equals = text.find('=');
        if (equals == std::string::npos) return std::nullopt;
        text = text.substr(equals + 1);
    }
    if (text.empty() || text.front() != '{') return std::nullopt;
    std::vector<std::optional<std::string>> elements;
    int depth = 0;
    size_t i = 0;
    while (i < text.size()) {
        char c = text[i];
        if (c == '{') {
            ++depth;
            ++i;
        } else if (c == '}') {
            --depth;
            ++i;
            if (depth == 0) return i == text.size() ? std::optional(elements) : std::nullopt;
        } else if (c == ',') {
            ++i;
        } else if (c == '"') {
            std::string element;
            ++i;
            while (i < text.size() && text[i] != '"') {
                if (text[i] == '\\' && i + 1 < text.size()) ++i;
                element += text[i++];
            }
            if (i >= text.size()) return std::nullopt;
            ++i;
            elements.emplace_back(std::move(element));
        } else {
            size_t end = text.find_first_of(",}", i);
            if (end == std::string::npos) return std::nullopt;
            std::string element(text.substr(i, end - i));
            if (element == "NULL") {
                elements.emplace_back(std::nullopt);
            } else {
                elements.emplace_back(std::move(element));
            }
            i = end;
        }
    }
    return std::nullopt;
}

// One scalar given as text (an array element, or a value wal2json quoted).
std::optional<std::string> scalar_from_text(const FieldType& type, const std::string& text) {
    switch (type.kind) {
        case FieldKind::kLong:
            if (is_json_number(text, true)) return text;
            return std::nullopt;
        case FieldKind::kDouble:
            // NaN and ±Infinity have no JSON form and no double field takes them.
            if (is_json_number(text, false)) return text;
            return std::nullopt;
        case FieldKind::kBoolean:
            if (text == "t" || text == "true") return std::string("true");
            if (text == "f" || text == "false") return std::string("false");
            return std::nullopt;
        case FieldKind::kKeyword:
        case FieldKind::kJsonText:
            return quote(text);
        case FieldKind::kDate:
        case FieldKind::kTime:
        case FieldKind::kTimeTz:
        case FieldKind::kTimestamp:
        case FieldKind::kTimestampTz: {
            auto converted = convert_date_time(type.kind, text);
            if (!converted) return std::nullopt;
            return quote(*converted);
        }
        case FieldKind::kVector: {
            // pgvector prints "[1,2,3]", which is a JSON array of numbers.
            JsonValue parsed;
            try {
                parsed = parse_json(text);
            } catch (const JsonError&) {
                return std::nullopt;
            }
            if (!parsed.is_array()) return std::nullopt;
            if (type.dimension > 0 && parsed.items.size() != static_cast<size_t>(type.dimension))
                return std::nullopt;
            for (const auto& item : parsed.items)
                if (!item.is_number()) return std::nullopt;
            return parsed.to_json();
        }
        case FieldKind::kUnknown:
            return std::nullopt;
    }
    return std::nullopt;
}

void append_field(std::string& out, bool& first, const std::string& name, const std::string& mapping) {
    if (!first) out += ',';
    first = false;
    out += quote(name);
    out += ':';
    out += mapping;
}

// Aliases "<table>.<column>" -> column id, grouped by table (a dotted field name is an object path).
using AliasTree = std::map<std::string, std::map<std::string, std::string>>;

void append_aliases(std::string& out, bool& first, const AliasTree& aliases) {
    for (const auto& [table, columns] : aliases) {
        std::string object = "{\"properties\":{";
        bool first_column = true;
        for (const auto& [column, path] : columns) {
            append_field(object, first_column, column, "{\"type\":\"alias\",\"path\":" + quote(path) + "}");
        }
        object += "}}";
        append_field(out, first, table, object);
    }
}

// Names that can be an alias path: a dot would nest it one level deeper, and a table named like a
// top-level field (`_table`, a column id) would collide with it.
bool aliasable(const std::string& table, const std::string& column) {
    return !table.empty() && !column.empty() && table.find('.') == std::string::npos &&
           column.find('.') == std::string::npos && table != "_table" && table != kChangeVersionField &&
           table.find('-') == std::string::npos;
}

// Adds `column`'s field (when `with_field`) and alias; records what has no mapping.
void add_column(const std::string& schema, const SchemaTable& table, const SchemaColumn& column,
                Engine engine, bool with_field, std::string& fields, bool& first, AliasTree& aliases,
                MappingReport& report) {
    auto mapping = field_mapping(field_type_of(column.type), engine);
    if (!mapping) {
        report.skipped_columns.push_back(schema + "." + table.name + "." + column.name + " (" + column.type +
                                         ")");
        return;
    }
    if (with_field) append_field(fields, first, column.pgstream_id, *mapping);
    if (aliasable(table.name, column.name)) aliases[table.name][column.name] = column.pgstream_id;
}

}  // namespace

FieldType field_type_of(const std::string& postgres_type) {
    FieldType result;
    std::string type = postgres_type;
    while (type.size() > 2 && type.compare(type.size() - 2, 2, "[]") == 0) {
        result.array = true;
        type.resize(type.size() - 2);
    }
    std::string typmod;
    std::string base = strip_typmod(type, typmod);
    while (!base.empty() && base.back() == ' ') base.pop_back();
    // A type outside the search path is schema-qualified ("public.vector"); "interval year to month" and
    // friends are intervals.
    if (size_t dot = base.rfind('.'); dot != std::string::npos && base.find('"') == std::string::npos) {
        base = base.substr(dot + 1);
    }
    if (base.compare(0, 8, "interval") == 0) {
        result.kind = FieldKind::kKeyword;
        return result;
    }
    auto found = kinds_by_name().find(base);
    if (found == kinds_by_name().end()) return result;
    result.kind = found->second;
    if (result.kind == FieldKind::kVector && !typmod.empty() && is_digits(typmod, typmod.size())) {
        result.dimension = std::stoi(typmod);
    }
    return result;
}

std::optional<std::string> field_mapping(const FieldType& type, Engine engine) {
    switch (type.kind) {
        case FieldKind::kUnknown:
            return std::nullopt;
        case FieldKind::kLong:
            return std::string("{\"type\":\"long\"}");
        case FieldKind::kDouble:
            return std::string("{\"type\":\"double\"}");
        case FieldKind::kBoolean:
            return std::string("{\"type\":\"boolean\"}");
        case FieldKind::kKeyword:
            return "{\"type\":\"keyword\",\"ignore_above\":" + std::to_string(kKeywordIgnoreAbove) +
                   ",\"fields\":{\"text\":{\"type\":\"text\"}}}";
        case FieldKind::kJsonText:
            return std::string("{\"type\":\"text\"}");
        case FieldKind::kDate:
        case FieldKind::kTime:
        case FieldKind::kTimeTz:
        case FieldKind::kTimestamp:
        case FieldKind::kTimestampTz:
            return std::string("{\"type\":\"date\",\"format\":") + quote(date_format(type.kind)) + "}";
        case FieldKind::kVector:
            if (engine == Engine::kElasticsearch) {
                if (type.dimension <= 0) return std::string("{\"type\":\"dense_vector\"}");
                return "{\"type\":\"dense_vector\",\"dims\":" + std::to_string(type.dimension) + "}";
            }
            if (type.dimension <= 0) return std::nullopt;  // knn_vector requires a dimension
            return "{\"type\":\"knn_vector\",\"dimension\":" + std::to_string(type.dimension) + "}";
    }
    return std::nullopt;
}

std::string index_name(const std::string& schema_name) {
    return schema_name + "-1";
}

namespace {
std::string change_version_property() {
    return std::string("\"") + kChangeVersionField + "\":{\"type\":\"long\"}";
}
}  // namespace

std::string change_version_mapping_body() {
    return "{\"properties\":{" + change_version_property() + "}}";
}

std::string index_create_body(const SchemaLogEntry& entry, Engine engine, MappingReport& report) {
    std::string body =
        "{\"settings\":{\"index.number_of_shards\":1,\"index.number_of_replicas\":1,"
        "\"index.mapping.total_fields.limit\":2000";
    if (engine == Engine::kOpenSearch) body += ",\"index.knn\":true,\"index.knn.algo_param.ef_search\":100";
    body += "},\"mappings\":{\"dynamic\":\"strict\",\"properties\":{\"_table\":{\"type\":\"keyword\"},";
    body += change_version_property();
    bool first = false;
    AliasTree aliases;
    for (const auto& table : entry.tables) {
        for (const auto& column : table.columns) {
            add_column(entry.schema_name, table, column, engine, true, body, first, aliases, report);
        }
    }
    append_aliases(body, first, aliases);
    body += "}},\"aliases\":{" + quote(alias_name(entry.schema_name)) + ":{}}}";
    return body;
}

std::string put_mapping_body(const SchemaLogEntry* previous, const SchemaLogEntry& next, Engine engine,
                             MappingReport& report) {
    struct Known {
        std::string table_name;
        const SchemaColumn* column;
    };
    std::map<std::string, Known> known;  // by column pgstream id
    if (previous != nullptr) {
        for (const auto& table : previous->tables)
            for (const auto& column : table.columns) known[column.pgstream_id] = {table.name, &column};
    }
    std::string properties;
    bool first = true;
    AliasTree aliases;
    for (const auto& table : next.tables) {
        for (const auto& column : table.columns) {
            auto old = known.find(column.pgstream_id);
            if (old == known.end()) {
                add_column(next.schema_name, table, column, engine, true, properties, first, aliases, report);
                continue;
            }
            auto old_mapping = field_mapping(field_type_of(old->second.column->type), engine);
            auto new_mapping = field_mapping(field_type_of(column.type), engine);
            if (old_mapping != new_mapping) {
                report.warnings.push_back("column " + next.schema_name + "." + table.name + "." +
                                          column.name + " changed type from " + old->second.column->type +
                                          " to " + column.type +
                                          ": its field keeps the old mapping until a reindex");
                continue;
            }
            if (new_mapping &&
                (old->second.table_name != table.name || old->second.column->name != column.name) &&
                aliasable(table.name, column.name)) {
                aliases[table.name][column.name] = column.pgstream_id;
            }
        }
    }
    append_aliases(properties, first, aliases);
    if (properties.empty()) return {};
    return "{\"properties\":{" + properties + "}}";
}

std::vector<std::string> removed_table_ids(const SchemaLogEntry& previous, const SchemaLogEntry& next) {
    std::set<std::string> kept;
    for (const auto& table : next.tables) kept.insert(table.pgstream_id);
    std::vector<std::string> removed;
    for (const auto& table : previous.tables)
        if (!kept.count(table.pgstream_id)) removed.push_back(table.pgstream_id);
    return removed;
}

std::optional<std::string> document_value(const FieldType& type, const JsonValue& value) {
    if (value.is_null()) return std::string("null");
    if (type.array) {
        if (!value.is_string()) return std::nullopt;
        auto elements = parse_array_literal(value.text);
        if (!elements) return std::nullopt;
        FieldType element_type = type;
        element_type.array = false;
        std::string out = "[";
        for (size_t i = 0; i < elements->size(); ++i) {
            if (i > 0) out += ',';
            const auto& element = (*elements)[i];
            // A NULL element, or one the field cannot take, is null: the engines skip nulls in arrays.
            auto converted = element ? scalar_from_text(element_type, *element) : std::nullopt;
            out += converted ? *converted : "null";
        }
        return out + "]";
    }
    switch (value.kind) {
        case JsonValue::Kind::Number:
            if (type.kind == FieldKind::kKeyword || type.kind == FieldKind::kJsonText)
                return quote(value.text);
            return scalar_from_text(type, value.text);
        case JsonValue::Kind::Bool:
            if (type.kind == FieldKind::kKeyword || type.kind == FieldKind::kJsonText)
                return quote(value.text);
            return scalar_from_text(type, value.text);
        case JsonValue::Kind::String:
            return scalar_from_text(type, value.text);
        default:
            if (type.kind == FieldKind::kKeyword || type.kind == FieldKind::kJsonText)
                return quote(value.to_json());
            return std::nullopt;
    }
}

bool is_scalar_value(const FieldType& type, const JsonValue& value) {
    if (value.is_null()) return true;
    if (type.array || !(value.is_number() || value.is_bool() || value.is_string())) return false;
    switch (type.kind) {
        case FieldKind::kKeyword:
        case FieldKind::kJsonText:
        case FieldKind::kLong:
        case FieldKind::kDouble:
        case FieldKind::kBoolean:
            return true;
        default:
            return false;
    }
}

namespace {
char* write_literal(char* out, std::string_view text) {
    std::memcpy(out, text.data(), text.size());
    return out + text.size();
}
}  // namespace

// The cases of document_value() and scalar_from_text() for these values, in place.
char* write_scalar_value(char* out, const FieldType& type, const JsonValue& value) {
    if (value.is_null()) return write_literal(out, "null");
    const std::string& text = value.text;
    switch (type.kind) {
        case FieldKind::kLong:
        case FieldKind::kDouble:
            // NaN and ±Infinity have no JSON form and no double field takes them.
            if (!is_json_number(text, type.kind == FieldKind::kLong)) return nullptr;
            return write_literal(out, text);
        case FieldKind::kBoolean:
            if (text == "t" || text == "true") return write_literal(out, "true");
            if (text == "f" || text == "false") return write_literal(out, "false");
            return nullptr;
        default:  // keyword, json: the text as a string, whatever the value's JSON kind
            return write_json_string_value(out, value);
    }
}

std::string schema_document_json(const SchemaLogEntry& entry) {
    if (entry.dropped) return "{\"tables\":null,\"dropped\":true}";
    std::string out = "{\"tables\":[";
    auto strings = [](const std::vector<std::string>& items) {
        std::string list = "[";
        for (size_t i = 0; i < items.size(); ++i) list += (i ? "," : "") + json_quote(items[i]);
        return list + "]";
    };
    for (size_t t = 0; t < entry.tables.size(); ++t) {
        const auto& table = entry.tables[t];
        if (t > 0) out += ',';
        out += "{\"oid\":" + quote(table.oid) + ",\"name\":" + quote(table.name) +
               ",\"pgstream_id\":" + quote(table.pgstream_id) + ",\"columns\":[";
        for (size_t c = 0; c < table.columns.size(); ++c) {
            const auto& column = table.columns[c];
            if (c > 0) out += ',';
            out += "{\"pgstream_id\":" + quote(column.pgstream_id) + ",\"name\":" + quote(column.name) +
                   ",\"type\":" + quote(column.type) +
                   ",\"nullable\":" + (column.nullable ? "true" : "false") +
                   ",\"unique\":" + (column.unique ? "true" : "false") + "}";
        }
        out += "],\"primary_key_columns\":" + strings(table.primary_key_columns) +
               ",\"unique_not_null_columns\":" + strings(table.unique_not_null_columns) + "}";
    }
    return out + "]}";
}

std::string schema_log_index_body() {
    return "{\"settings\":{\"index.number_of_shards\":1,\"index.number_of_replicas\":1},"
           "\"mappings\":{\"dynamic\":\"strict\",\"properties\":{\"id\":{\"type\":\"keyword\"},"
           "\"version\":{\"type\":\"long\"},\"schema_name\":{\"type\":\"keyword\"},\"schema\":{\"type\":"
           "\"text\"},"
           "\"created_at\":{\"type\":\"date\",\"format\":\"yyyy-MM-dd HH:mm:ss.SSSSSS\"},"
           "\"acked\":{\"type\":\"boolean\"}}}}";
}

std::string schema_log_document(const SchemaLogEntry& entry, const std::string& created_at) {
    return "{\"id\":" + quote(entry.id) + ",\"version\":" + std::to_string(entry.version) +
           ",\"schema_name\":" + quote(entry.schema_name) +
           ",\"schema\":" + quote(schema_document_json(entry)) + ",\"created_at\":" + quote(created_at) +
           ",\"acked\":true}";
}

}  // namespace pgstream::search
