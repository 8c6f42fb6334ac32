// Parses wal2json format-version 2 records (one JSON object per record) into Events.
#pragma once

#include <string_view>

#include "wal/event.h"
#include "wal/event_codec.h"  // append_event_json, event_to_json: the event JSON

namespace pgstream {

struct Record {
    enum class Kind { Begin, Commit, Change };
    Kind kind = Kind::Change;
    // Begin/Commit: "lsn" is the commit LSN, "nextlsn" the transaction's end LSN.
    Lsn lsn;
    Lsn next_lsn;
    std::string xid;        // Begin/Commit only: a change carries its own in `event`
    SharedText timestamp;   // Begin/Commit only
    MutableEventPtr event;  // Change only
};

// Throws JsonError when `text` is not a wal2json v2 record.
Record parse_wal2json_record(std::string_view text);

}  // namespace pgstream
