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

void RecordSequencer::handle_record(std::string_view text, Lsn wal_start) {
    Record record;
    try {
        record = parse_wal2json_record(text);
    } catch (const JsonError& e) {
        std::string excerpt(text.substr(0, 200));
        throw std::runtime_error("cannot parse the record received at " + wal_start.str() + ": " + e.what() +
                                 " (record: " + excerpt + ")");
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

    EventPtr event = std::move(record.event);
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
