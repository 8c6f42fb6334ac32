// wal2json's filter-tables / add-tables lists: "schema.table" items separated by unescaped commas,
// backslash escapes, "*." for every schema and ".*" for every table.
#pragma once

#include "pg_headers.h"

struct TableFilter {
    char* schema_name;  // NULL when any_schema
    char* table_name;   // NULL when any_table
    bool any_schema;
    bool any_table;
};

struct TableFilterList {
    TableFilter* items;
    int count;
};

// Parses `text` (not modified). Returns false on a syntax error wal2json rejects. Allocates with palloc.
bool parse_table_filter_list(const char* text, TableFilterList* out);

// True if schema.table matches any item of the list.
bool table_filter_matches(const TableFilterList* list, const char* schema_name, const char* table_name);

// Splits a comma list the way wal2json does for actions and message prefixes: items trimmed of
// whitespace, empty items rejected, backslashes kept verbatim. Returns false on a syntax error.
bool split_comma_list(const char* text, List** items);

// Same as split_comma_list but empty items are allowed and each item becomes atoi(item) (wal2json's
// filter-origins parsing).
bool split_origin_list(const char* text, Oid** ids, int* count);
