// What a pgstream event looks like on Kafka: key = schema name (the schema a schema_log row describes, for
// schema changes), value = the event JSON (wal/event_codec.h: append_event_json, event_from_json).
#pragma once

#include <string>

#include "wal/event.h"

namespace pgstream::kafka {

// The partition key: every event of one schema, data and schema changes alike, lands on one partition.
std::string kafkaKey(const Event& event);

}  // namespace pgstream::kafka
