// PostgreSQL types to search engine fields: the mapping of a column, the index-create and put-mapping bodies
// for a schema version, and the conversion of wal2json's rendering of a value to what the field accepts.
// See docs/search.md for the table and the reasons behind each choice.
#pragma once

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "processor/translator/schema_log.h"
#include "search/search_settings.h"
#include "wal/json.h"

namespace pgstream::search {

enum class FieldKind {
    kUnknown,  // no mapping: the column is left out of the mapping and of the documents
    kLong,
    kDouble,
    kBoolean,
    kKeyword,   // keyword (exact, sortable) with a `.text` full-text sub-field
    kJsonText,  // json/jsonb: the document's text in a `text` field
    kDate,
    kTime,
    kTimeTz,
    kTimestamp,
    kTimestampTz,
    kVector,
};

struct FieldType {
    FieldKind kind = FieldKind::kUnknown;
    bool array = false;
    int dimension = 0;  // kVector: vector(n); 0 when the type has no typmod
};

// Longest keyword value indexed, in characters. The engines count ignore_above in characters but Lucene's
// term limit is 32766 bytes, so the reference's 32766 lets a 4-byte UTF-8 text of 10k characters fail its
// whole document; 8191 characters always fit. Longer values stay in _source and the `.text` sub-field.
inline constexpr int kKeywordIgnoreAbove = 8191;

// The field type of a PostgreSQL type as format_type() / wal2json print it ("character varying(30)",
// "timestamp(3) with time zone", "integer[]", "vector(3)", "public.vector(3)").
FieldType field_type_of(const std::string& postgres_type);

// The mapping of one field ({"type":...}), or nullopt when the type has no mapping on `engine` (unknown
// types; a vector without a dimension on OpenSearch).
std::optional<std::string> field_mapping(const FieldType& type, Engine engine);

// Index of a schema's documents, and the alias that writes and queries go through.
std::string index_name(const std::string& schema_name);
inline const std::string& alias_name(const std::string& schema_name) {
    return schema_name;
}
// The numeric field holding each document's external version (the change's LSN based version): a TRUNCATE or
// DROP TABLE deletes only the documents older than itself, so a replay that crosses it keeps the later rows.
inline constexpr const char* kChangeVersionField = "_change_version";
// PUT /<alias>/_mapping body adding kChangeVersionField to an index created before it existed.
std::string change_version_mapping_body();

// The index holding every applied schema version.
inline constexpr const char* kSchemaLogIndex = "pgstream";

// What a mapping left out, for counted warnings.
struct MappingReport {
    std::vector<std::string>
        skipped_columns;                // "<schema>.<table>.<column> (<type>)": no mapping for the type
    std::vector<std::string> warnings;  // e.g. a column whose type changed: needs a reindex
};

// PUT /<schema>-1 body: settings, mappings (dynamic strict, _table, every column of `entry`, aliases) and the
// alias <schema>.
std::string index_create_body(const SchemaLogEntry& entry, Engine engine, MappingReport& report);

// PUT /<schema>-1/_mapping body adding what `next` has and `previous` did not: new columns' fields, and an
// alias <table>.<column> for every new column, renamed column and column of a renamed table. Empty when
// nothing is to add. A column whose mapping changed (ALTER COLUMN TYPE) is reported, not changed: a field's
// type cannot change in place.
std::string put_mapping_body(const SchemaLogEntry* previous, const SchemaLogEntry& next, Engine engine,
                             MappingReport& report);

// pgstream ids of the tables `previous` had and `next` has not (dropped): their documents are deleted.
std::vector<std::string> removed_table_ids(const SchemaLogEntry& previous, const SchemaLogEntry& next);

// The JSON of `value` (as wal2json wrote it) for a field of `type`, or nullopt when it cannot be converted
// (a number field given "NaN", a timestamp outside what the date format takes). Null stays null.
std::optional<std::string> document_value(const FieldType& type, const JsonValue& value);
// What rows mostly hold, converted in place without a string of their own: a null, or a number, boolean or
// string for a (non-array) number, boolean, keyword or json field. write_scalar_value() writes the JSON that
// document_value() gives into room for scalar_value_bound(value) bytes and returns the end of what it wrote,
// or nullptr where document_value() gives nullopt.
bool is_scalar_value(const FieldType& type, const JsonValue& value);
inline size_t scalar_value_bound(const JsonValue& value) {
    return std::max<size_t>(5, json_string_bound(value.text.size()));  // "false", or the text escaped
}
char* write_scalar_value(char* out, const FieldType& type, const JsonValue& value);

// The schema part of a schema_log entry as parse_schema_document() reads it back.
std::string schema_document_json(const SchemaLogEntry& entry);

// The `pgstream` index mapping (the reference's) and one entry's document in it.
std::string schema_log_index_body();
std::string schema_log_document(const SchemaLogEntry& entry, const std::string& created_at);

}  // namespace pgstream::search
