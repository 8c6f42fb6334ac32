// The shipper's JSON-lines output (one object per data or schema event), parsed with RapidJSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pgstream_it {

struct OutputColumn {
    std::string id;
    std::string name;
    std::string type;
    std::string value_json;          // the value re-serialised as JSON ("5", "\"abc\"", "null")
    std::string value_text() const;  // unquoted for strings, JSON text otherwise
};

struct OutputEvent {
    std::string raw;
    std::string action;  // I U D T M
    std::optional<int64_t> xid;
    std::string timestamp;
    std::string lsn;
    std::string commit_lsn;
    std::string schema;
    std::string table;
    std::string prefix;            // M
    std::string content;           // M
    std::string content_encoding;  // M: "base64" when content is the base64 of bytes that are not UTF-8 text
    std::vector<OutputColumn> columns;
    std::vector<OutputColumn> identity;
    bool has_metadata = false;
    std::string table_pgstream_id;
    std::vector<std::string> id_col_pgstream_ids;
    std::string version_json;  // metadata.version as JSON text, empty if absent

    bool is_schema_log() const { return schema == "pgstream" && table == "schema_log"; }
    const OutputColumn* column(const std::string& name) const;
    const OutputColumn* identity_column(const std::string& name) const;
    // Text of a column / identity value, nullopt if the column is absent.
    std::optional<std::string> value(const std::string& name) const;
    std::optional<std::string> identity_value(const std::string& name) const;
};

// nullopt (with *error set) when the line is not a JSON object.
std::optional<OutputEvent> parse_event(const std::string& line, std::string* error = nullptr);

// Fast path for large outputs: the integer value of column `name` in "columns", without building an
// OutputEvent.
std::optional<int64_t> int_column(const std::string& line, const char* name);

}  // namespace pgstream_it
