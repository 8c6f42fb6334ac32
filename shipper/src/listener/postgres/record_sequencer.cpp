#include "listener/postgres/record_sequencer.h"

#include <stdexcept>

#include "util/log.h"
#include "wal/record_parser.h"

namespace pgstream {

void RecordSequencer::on_data(std::string_view data, Lsn wal_start) {
    while (!data.empty()) {
        size_t newline = data.find('\n');
        std::string_view line = data.substr(0, newline);
        if (!line.empty()) handle_record(line, wal_start);
        if (newline == std::string_view::npos) break;
        data.remove_prefix(newline + 1);
    }
}

void RecordSequencer::on_keepalive(Lsn wal_end) {
    if (!in_transaction_) watermark_.observe_idle(wal_end);
}

void RecordSequencer::cut_transaction() {
    if (in_transaction_ && !skipping_transaction_) {
        watermark_.close_unit(transaction_unit_, Lsn());
        ++stats_.transactions_cut;
    }
    in_transaction_ = false;
    skipping_transaction_ = false;
}

void RecordSequencer::handle_unreadable(std::string_view text, Lsn wal_start, std::string reason) {
    ++stats_.unreadable_records;
    while (!reason.empty() && reason.back() == '.') reason.pop_back();  // RapidJSON's messages end in one
    // Received again after a reconnect: it was dealt with the first time.
    if (in_transaction_ && skipping_transaction_) return;
    // Row data stays out of the log unless asked for.
    log::trace("postgres listener: the unreadable record received at ", wal_start.str(), ": ", text);
    Lsn transaction_end = in_transaction_ ? transaction_end_ : Lsn();
    std::string where =
        "the record received at " + wal_start.str() + " (" + std::to_string(text.size()) + " bytes" +
        (transaction_end.valid() ? ", in the transaction ending at " + transaction_end.str() : "") + ")";
    if (unreadable_.dead_letters) {
        unreadable_.dead_letters->append(wal_start, transaction_end, reason, text);
        ++stats_.dead_lettered_records;
        log::warn("postgres listener: cannot read ", where, ": ", reason,
                  "; wrote it to the dead-letter file ", unreadable_.dead_letters->path(), " and went on");
        return;
    }
    // Past a transaction: its commit record's end. A record outside any (a non-transactional message): its
    // own position, which the server skips once the slot is there.
    Lsn skip_to = transaction_end.valid() ? transaction_end : wal_start;
    std::string slot = unreadable_.slot_name.empty() ? "SLOT" : unreadable_.slot_name;
    throw std::runtime_error(
        "cannot read " + where + ": " + reason +
        ". The stream stops here: every start would meet this record again. To go on, either set "
        "PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=dead-letter (with "
        "PGSTREAM_POSTGRES_LISTENER_DEAD_LETTER_FILE) "
        "to keep the record in that file and stream the rest, or skip " +
        (transaction_end.valid() ? "its whole transaction" : "it") +
        " with the shipper stopped: SELECT pg_replication_slot_advance('" + slot + "', '" + skip_to.str() +
        "')");
}

void RecordSequencer::handle_record(std::string_view text, Lsn wal_start) {
    Record record;
    try {
        record = parse_wal2json_record(text);
    } catch (const JsonError& e) {
        handle_unreadable(text, wal_start, e.what());
        return;
    }
    ++stats_.records;
    switch (record.kind) {
        case Record::Kind::Begin:
            cut_transaction();
            in_transaction_ = true;
            // After a reconnect the server resends everything after the slot's last confirmed position;
            // transactions already received are skipped (their commit position orders the stream).
            skipping_transaction_ = record.lsn.valid() && last_commit_.valid() && record.lsn <= last_commit_;
            if (skipping_transaction_) {
                ++stats_.duplicates_skipped;
                return;
            }
            transaction_unit_ = watermark_.open_unit();
            transaction_end_ = record.next_lsn;
            transaction_timestamp_ = record.timestamp;
            transaction_xid_ = record.xid;
            return;
        case Record::Kind::Commit: {
            if (!in_transaction_) {
                log::warn("postgres listener: commit record without a transaction at ", record.lsn.str());
                return;
            }
            in_transaction_ = false;
            if (skipping_transaction_) {
                skipping_transaction_ = false;
                return;
            }
            Lsn end = record.next_lsn.valid() ? record.next_lsn : transaction_end_;
            last_commit_ = std::max(last_commit_, record.lsn.valid() ? record.lsn : end);
            watermark_.close_unit(transaction_unit_, end);
            return;
        }
        case Record::Kind::Change:
            break;
    }

    MutableEventPtr event = std::move(record.event);
    if (in_transaction_) {
        if (skipping_transaction_) return;
        event->commit_lsn = transaction_end_;
        // Read with pgstream-transaction-fields-once, a change carries neither: they are its transaction's.
        if (event->timestamp.empty()) event->timestamp = transaction_timestamp_;
        if (event->xid.empty()) event->xid = transaction_xid_;
        event->checkpoint_token = transaction_unit_;
        watermark_.add_pending(transaction_unit_);
        ++stats_.events;
        try {
            next_.process(std::move(event));
        } catch (...) {
            // Not taken (a stop, or a failure that ends the run): the transaction is cut and sent again.
            watermark_.withdraw(transaction_unit_);
            throw;
        }
        return;
    }
    // A record outside any transaction: a non-transactional logical message.
    Lsn position = event->lsn.valid() ? event->lsn : wal_start;
    if (last_message_.valid() && position <= last_message_) {
        ++stats_.duplicates_skipped;
        return;
    }
    last_message_ = position;
    event->commit_lsn = position;
    uint64_t unit = watermark_.open_unit();
    event->checkpoint_token = unit;
    watermark_.add_pending(unit);
    ++stats_.events;
    try {
        next_.process(std::move(event));
    } catch (...) {
        watermark_.withdraw(unit);
        watermark_.close_unit(unit, Lsn());
        throw;
    }
    watermark_.close_unit(unit, position);
}

}  // namespace pgstream
