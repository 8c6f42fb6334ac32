// The event JSON: one event as one JSON object, the form stdout prints, Kafka carries and the HTTP outputs
// send (fields in docs/configuration.md#the-json-lines-output). Encoding and decoding live here, and nowhere
// else: the wal2json record parser decodes a change's fields with decode_event_object too.
#pragma once

#include <string>
#include <string_view>

#include "wal/event.h"
#include "wal/json.h"

namespace pgstream {

// Serialises an event as one JSON object, no newline.
void append_event_json(std::string& out, const Event& event);

// Event JSON lines written back to back into memory kept from one batch to the next. std::string's resize
// zero-fills each event's worst-case room (kilobytes for a wide row, more than the event itself) before it
// is written; this buffer clears memory only when it grows.
class EventJsonBuffer {
  public:
    void append_event(const Event& event);  // as append_event_json
    void push_back(char c) {
        resize(used_ + 1);
        room_[used_ - 1] = c;
    }
    void clear() { used_ = 0; }
    std::string_view view() const { return {room_.data(), used_}; }

    // For the event writer: the written size, and a new one whose added bytes are unspecified until written.
    size_t size() const { return used_; }
    void resize(size_t size);
    char* data() { return room_.data(); }

  private:
    std::string room_;
    size_t used_ = 0;
};
std::string event_to_json(const Event& event);

// Decodes what append_event_json writes, or the Go pgstream's wal.Data JSON (metadata table_pgstream_id,
// id_col_pgstream_id, version_col_pgstream_id, schema_id). Throws JsonError when it is neither.
std::shared_ptr<Event> event_from_json(std::string_view json);

// The fields of an event object (everything but "action", which the caller checks and sets): xid, timestamp,
// lsn, commit_lsn, schema, table, columns, identity, the message fields and metadata. Moves strings out of
// `object`. Throws JsonError on a malformed field.
void decode_event_object(JsonValue& object, Event& event);

// A string member, "" when absent or not a string.
std::string json_string_member(const JsonValue& object, std::string_view key);
// An LSN member ("0/16B3748"), Lsn() when absent or null; throws JsonError when it is something else.
Lsn json_lsn_member(const JsonValue& object, std::string_view key);

}  // namespace pgstream
