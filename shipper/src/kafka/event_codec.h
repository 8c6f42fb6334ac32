// What a pgstream event looks like on Kafka: key = schema name (the schema a schema_log row describes, for
// schema changes), value = the event's JSON line (the stdout writer's shape: wal2json fields, column ids,
// commit LSN and pgstream metadata).
#pragma once

#include <string>
#include <string_view>

#include "wal/event.h"

namespace pgstream::kafka {

// The partition key: every event of one schema, data and schema changes alike, lands on one partition.
std::string kafkaKey(const Event& event);

void appendKafkaValue(std::string& out, const Event& event);

// Decodes a record written by the Kafka writer, or by the Go pgstream (its wal.Data JSON: metadata
// table_pgstream_id / id_col_pgstream_id / version_col_pgstream_id). Throws JsonError when it is neither.
EventPtr eventFromKafkaValue(std::string_view value);

}  // namespace pgstream::kafka
