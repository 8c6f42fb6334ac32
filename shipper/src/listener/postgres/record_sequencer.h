// Turns the replication stream — messages holding wal2json format-version 2 records (several per message,
// newline-separated, with the pgstream plugin's packing), keepalives and reconnects — into events handed to
// a processor, registering each with the watermark in the unit (transaction or standalone message) it belongs
// to. Single-threaded: the listener's processing thread owns it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "checkpoint/watermark.h"
#include "listener/postgres/unreadable_record_file.h"
#include "processor/processor.h"

namespace pgstream {

struct SequencerStats {
    uint64_t records = 0;
    uint64_t events = 0;
    uint64_t duplicates_skipped = 0;  // units the server sent again after a reconnect
    uint64_t transactions_cut = 0;    // transactions a reconnect or shutdown interrupted
    // Records that are not wal2json v2 JSON (for a metrics layer: pgstream_unreadable_records_total), and
    // those of them written to the dead-letter file and gone past.
    uint64_t unreadable_records = 0;
    uint64_t dead_lettered_records = 0;
};

// What happens to a record the sequencer cannot read (docs/operations.md, "Unreadable records").
struct UnreadableRecordRule {
    // null: stop with an error naming the record's position and how to go on (the default); else the record
    // is written here and the stream goes on without it.
    std::shared_ptr<UnreadableRecordFile> dead_letters;
    std::string slot_name;  // named in the stop error's advice
};

class RecordSequencer {
  public:
    RecordSequencer(Processor& next, Watermark& watermark, UnreadableRecordRule unreadable = {})
        : next_(next), watermark_(watermark), unreadable_(std::move(unreadable)) {}

    // One replication message. Throws std::runtime_error on a record that is not wal2json v2 (unless the
    // rule dead-letters it) or that cannot be dead-lettered.
    void on_data(std::string_view data, Lsn wal_start);
    // A keepalive: its position is confirmable once everything before it is, unless a transaction is open.
    void on_keepalive(Lsn wal_end);
    // The connection was replaced: a transaction received only in part will come again, whole.
    void on_reconnect() { cut_transaction(); }
    // Stopping: same as a reconnect, so that the cut transaction does not hold the watermark.
    void on_shutdown() { cut_transaction(); }

    const SequencerStats& stats() const { return stats_; }
    bool in_transaction() const { return in_transaction_; }

  private:
    void handle_record(std::string_view text, Lsn wal_start);
    void handle_unreadable(std::string_view text, Lsn wal_start, std::string reason);
    void cut_transaction();

    Processor& next_;
    Watermark& watermark_;
    UnreadableRecordRule unreadable_;
    SequencerStats stats_;

    bool in_transaction_ = false;
    bool skipping_transaction_ = false;
    uint64_t transaction_unit_ = 0;
    Lsn transaction_end_;
    SharedText transaction_timestamp_;  // shared by the transaction's events
    std::string transaction_xid_;
    // Already received, for skipping what the server sends again after a reconnect: commit LSNs increase
    // from transaction to transaction, and so do the (end) LSNs of non-transactional messages.
    Lsn last_commit_;
    Lsn last_message_;
};

}  // namespace pgstream
