#include "listener/postgres/unreadable_record_file.h"

#include "wal/json.h"

namespace pgstream {

void UnreadableRecordFile::append(Lsn received_at, Lsn transaction_end, std::string_view reason,
                            std::string_view record) {
    std::string line = "{\"received_at\":";
    line += received_at.valid() ? json_quote(received_at.str()) : "null";
    line += ",\"transaction_end_lsn\":";
    line += transaction_end.valid() ? json_quote(transaction_end.str()) : "null";
    line += ",\"reason\":";
    append_json_string(line, reason);
    line += ",\"record\":";
    append_json_string(line, record);
    line += "}\n";
    sink_.write_all(line);
    sink_.sync();
}

}  // namespace pgstream
