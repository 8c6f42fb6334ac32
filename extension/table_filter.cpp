#include "table_filter.h"

#include <ctype.h>
#include <string.h>

namespace {

// One item of a comma list, as [begin, end) of the raw text.
struct RawItem {
    const char* begin;
    const char* end;
};

// wal2json's list splitter (shared by every list option): items are separated by unescaped commas,
// surrounded by optional whitespace; an unescaped space inside an item is a syntax error. A backslash
// protects the next character from being taken as a separator or space; it stays in the item.
// Calls `on_item` for every item; returns false on a syntax error.
template <typename OnItem>
bool split_items(const char* text, bool allow_empty_items, OnItem on_item) {
    const char* p = text;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '\0') return true;

    for (;;) {
        const char* begin = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p)) {
            if (*p == '\\' && p[1] != '\0') p++;
            p++;
        }
        const char* end = p;
        if (begin == end && !allow_empty_items) return false;

        while (isspace((unsigned char)*p)) p++;
        bool done;
        if (*p == ',') {
            p++;
            while (isspace((unsigned char)*p)) p++;
            done = false;
        } else if (*p == '\0') {
            done = true;
        } else {
            return false;
        }
        on_item(RawItem{begin, end});
        if (done) return true;
    }
}

// Copies [begin, end) dropping each escaping backslash (the escaped character is kept).
char* unescape(const char* begin, const char* end) {
    char* out = (char*)palloc(end - begin + 1);
    char* w = out;
    for (const char* p = begin; p < end; p++) {
        if (*p == '\\' && p + 1 < end) p++;
        *w++ = *p;
    }
    *w = '\0';
    return out;
}

// Parses "schema.table": the first unescaped '.' separates the parts; "*." means any schema and a
// table part of exactly "*" means any table (an escaped "\*" is a literal star).
bool parse_qualified_name(const RawItem& item, TableFilter* filter) {
    const char* p = item.begin;
    while (p < item.end && *p != '.') {
        if (*p == '\\' && p + 1 < item.end) p++;
        p++;
    }
    if (p >= item.end) return false;

    filter->any_schema = (item.end - item.begin >= 2 && item.begin[0] == '*' && item.begin[1] == '.');
    filter->schema_name = filter->any_schema ? NULL : unescape(item.begin, p);

    const char* table_begin = p + 1;
    filter->any_table = (item.end - table_begin == 1 && table_begin[0] == '*');
    filter->table_name = filter->any_table ? NULL : unescape(table_begin, item.end);
    return true;
}

}  // namespace

bool parse_table_filter_list(const char* text, TableFilterList* out) {
    int capacity = 4;
    out->items = (TableFilter*)palloc0(sizeof(TableFilter) * capacity);
    out->count = 0;
    bool ok = true;
    bool split_ok = split_items(text, false, [&](const RawItem& item) {
        if (!ok) return;
        if (out->count == capacity) {
            capacity *= 2;
            out->items = (TableFilter*)repalloc(out->items, sizeof(TableFilter) * capacity);
        }
        if (parse_qualified_name(item, &out->items[out->count]))
            out->count++;
        else
            ok = false;
    });
    return split_ok && ok;
}

bool table_filter_matches(const TableFilterList* list, const char* schema_name, const char* table_name) {
    for (int i = 0; i < list->count; i++) {
        const TableFilter* f = &list->items[i];
        if ((f->any_schema || strcmp(f->schema_name, schema_name) == 0) &&
            (f->any_table || strcmp(f->table_name, table_name) == 0))
            return true;
    }
    return false;
}

bool split_comma_list(const char* text, List** items) {
    return split_items(text, false, [&](const RawItem& item) {
        *items = lappend(*items, pnstrdup(item.begin, item.end - item.begin));
    });
}

bool split_origin_list(const char* text, Oid** ids, int* count) {
    List* tokens = NIL;
    bool ok = split_items(text, true, [&](const RawItem& item) {
        tokens = lappend(tokens, pnstrdup(item.begin, item.end - item.begin));
    });
    if (!ok) return false;
    *count = list_length(tokens);
    *ids = (Oid*)palloc(sizeof(Oid) * (*count > 0 ? *count : 1));
    int i = 0;
    ListCell* lc;
    foreach (lc, tokens) (*ids)[i++] = (Oid)atoi((const char*)lfirst(lc));
    return true;
}
