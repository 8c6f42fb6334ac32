// One change leaving the database: the unit every listener produces and every processor consumes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "wal/json.h"
#include "wal/lsn.h"
#include "wal/shared_text.h"

namespace pgstream {

enum class Action : char {
    Insert = 'I',
    Update = 'U',
    Delete = 'D',
    Truncate = 'T',
    Message = 'M',  // pg_logical_emit_message
};

constexpr size_t kActionCount = 5;
// 0..4 for insert, update, delete, truncate, message (arrays of per-action counters), and the name metrics
// label it with ("insert", ...).
size_t action_index(Action action);
const char* action_label(Action action);

// The column heads are shared between the events of a table (wal/shared_text.h): they read like strings.
struct Column {
    SharedText id;  // pgstream column id "<table pgstream id>-<attnum>", filled by the translator
    SharedText name;
    SharedText type;
    JsonValue value;  // a scalar exactly as wal2json wrote it (numbers keep their digits)
};

// pgstream's additions, filled by the translator (empty without one).
struct EventMetadata {
    // The pgstream.schema_log id of the schema version the row was translated with (the Go pgstream's
    // metadata.schema_id); empty for untranslated events and schema_log rows.
    SharedText schema_id;
    SharedText table_pgstream_id;
    // Identity columns (primary key, else first unique not-null).
    SharedTextList id_col_pgstream_ids;
    std::string version;  // LSN of the change unless a VersionFinder says otherwise
    // Snapshot rows (docs/snapshot.md): the snapshot's id in pgstream.snapshots (0: a streamed change) and
    // the stream position it is consistent with. `version` is then set by the snapshot (below every later
    // change's LSN) and kept by the translator.
    uint64_t snapshot_id = 0;
    Lsn snapshot_lsn;

    bool is_snapshot() const { return snapshot_id != 0; }
};

struct Event {
    Action action = Action::Insert;
    std::string xid;  // JSON text of the transaction id ("1224"), "null" for non-transactional messages
    SharedText
        timestamp;   // commit time as wal2json prints it (shared by its transaction); empty when unknown
    Lsn lsn;         // the change's own LSN
    Lsn commit_lsn;  // end LSN of its transaction (the position to confirm once it is delivered)
    std::string schema;
    std::string table;
    std::vector<Column> columns;   // new values (I, U)
    std::vector<Column> identity;  // old key / old row (U, D)
    bool has_identity = false;     // wal2json wrote "identity" (it may legitimately be empty)
    // Logical messages (action M).
    std::string prefix;
    std::string content;
    bool transactional = false;

    EventMetadata metadata;

    // Opaque to processors: lets the checkpointer find what this event holds back. Set by the listener.
    uint64_t checkpoint_token = 0;
    // Human-readable source position for logs ("topic/partition/offset" for Kafka); empty when the LSN says
    // it (formatting every event's LSN for a log line that is almost never written cost a string per row).
    std::string position;

    // Asked of every event by the translator and the filter: a string_view comparison, the size first and
    // inline (std::string == const char* is a call that measures the literal and compares).
    bool in_pgstream_schema() const { return std::string_view(schema) == std::string_view("pgstream"); }
    // pgstream.schema_log_entries is the versions' table since extension 0.5.0 (schema_log is a view of it).
    bool is_schema_log() const {
        return in_pgstream_schema() && (table == "schema_log" || table == "schema_log_entries");
    }
    const Column* find_column(const std::string& name) const;

    // Every field back to its default, but the column vector and the schema and table names keep their
    // memory (their contents are the caller's to overwrite): a snapshot reader refills a recycled event with
    // the next row. Field by field, since assigning a default Event costs a construction, eight moves and a
    // destruction per row; a field added above must be added here.
    void reset_keeping_memory() {
        action = Action::Insert;
        xid.clear();
        timestamp.clear();
        lsn = Lsn();
        commit_lsn = Lsn();
        identity.clear();
        has_identity = false;
        prefix.clear();
        content.clear();
        transactional = false;
        metadata = EventMetadata();
        checkpoint_token = 0;
        position.clear();
    }
};

// Events are immutable once translated: every stage after the translator (filter, fan-out, outputs) shares
// one copy and only reads it.
using EventPtr = std::shared_ptr<const Event>;
// An event still being built: by its source, then completed (pgstream metadata) by the translator.
using MutableEventPtr = std::shared_ptr<Event>;

// For the one stage that completes events before they are shared (the translator): the event itself when
// `event` is its only reference (sources hand over events they created non-const: std::make_shared<Event>, or
// the snapshot readers' recycled events), else a copy of it.
MutableEventPtr take_for_completion(EventPtr&& event);

}  // namespace pgstream
