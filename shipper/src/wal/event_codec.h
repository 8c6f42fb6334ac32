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
