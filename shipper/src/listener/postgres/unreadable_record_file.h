// Where the PostgreSQL listener puts a record it cannot read when told to go on past it
// (PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=dead-letter; docs/operations.md, "Unreadable records").
#pragma once

#include <string>
#include <string_view>

#include "processor/stdout/line_sink.h"
#include "wal/lsn.h"

namespace pgstream {

// Appends one JSON line per record: {"received_at":"0/16B3748","transaction_end_lsn":"0/16B37A0"|null,
// "reason":"...","record":"<the record's text as a JSON string>"}. Each line is on disk (fdatasync) before
// append returns: the listener then lets the slot move past the record.
class UnreadableRecordFile {
  public:
    // Opens (creating, appending) `path`; throws std::runtime_error naming it when that fails.
    explicit UnreadableRecordFile(const std::string& path) : sink_(LineSink::open_file(path, 0600)) {}

    // Throws std::runtime_error when the line cannot be written whole.
    void append(Lsn received_at, Lsn transaction_end, std::string_view reason, std::string_view record);
    const std::string& path() const { return sink_.name(); }

  private:
    LineSink sink_;  // a failed write leaves no torn line behind
};

}  // namespace pgstream
