// Schema versions for the search tests: tables and columns of a "public" schema in a line each.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "processor/translator/schema_log.h"

namespace search_test {

inline pgstream::SchemaColumn column(const std::string& id, const std::string& name,
                                     const std::string& type) {
    pgstream::SchemaColumn c;
    c.pgstream_id = id;
    c.name = name;
    c.type = type;
    return c;
}

inline pgstream::SchemaTable table(const std::string& name, const std::string& id,
                                   std::vector<pgstream::SchemaColumn> columns) {
    pgstream::SchemaTable t;
    t.name = name;
    t.pgstream_id = id;
    t.columns = std::move(columns);
    return t;
}

// Version `version` of schema "public" with these tables.
inline pgstream::SchemaLogEntry schema(int64_t version, std::vector<pgstream::SchemaTable> tables) {
    pgstream::SchemaLogEntry entry;
    entry.id = "log" + std::to_string(version);
    entry.version = version;
    entry.schema_name = "public";
    entry.tables = std::move(tables);
    return entry;
}

}  // namespace search_test
