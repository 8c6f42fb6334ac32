// Snapshot rows: COPY ... TO STDOUT text lines turned into the columns of an insert event, with the value
// rendering of the output plugin (wal2json format-version 2): numbers as JSON numbers (NaN and ±Infinity as
// null), booleans as true/false, bytea as its hex digits, everything else as the type's output text in a
// JSON string. Which rule applies depends on the column's type OID, as in the plugin (a domain over integer
// is a string).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "wal/event.h"

namespace pgstream {

enum class ValueRendering : char { Number, Bool, Bytea, Text };

// The rendering of a column of type `type_oid` (pg_attribute.atttypid).
ValueRendering rendering_for_type(uint32_t type_oid);

struct SnapshotColumn {
    // Shared with every row's Column (wal/shared_text.h).
    SharedText name;
    SharedText type;  // format_type(atttypid, atttypmod), as the plugin's "type"
    ValueRendering rendering = ValueRendering::Text;
};

class CopyRowError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Decodes one line of COPY's text format (the trailing newline optional) into `out` (resized to the columns).
// Every field of every column is overwritten, so `out` may hold a previous row: its value texts keep their
// memory. Throws CopyRowError when the line does not have one field per column.
void decode_copy_row(std::string_view line, const std::vector<SnapshotColumn>& columns,
                     std::vector<Column>& out);

}  // namespace pgstream
