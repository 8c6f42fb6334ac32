// Listener over PostgreSQL's streaming replication protocol (START_REPLICATION SLOT ... LOGICAL) with the
// wal2json format-version 2 output of the pgstream or wal2json plugin.
//
// Two threads: a socket thread owns the libpq connection — it reads CopyData, answers keepalives, sends
// standby status updates on a timer and reconnects with exponential backoff — and hands raw messages
// through a bounded queue to the caller's thread, which parses records, registers them with the watermark
// and pushes them into the processor. When the processor applies back-pressure the queue fills, the socket
// thread stops reading but keeps sending status updates, so the server does not time the connection out.
//
// Shutdown: the StopToken's stop ends reading, reconnect backoffs and waits inside the pipeline (an event
// whose hand-over a stop interrupted is not taken: its transaction is cut and sent again); the outputs are
// then flushed and the watermark drained until the token's drain deadline, and a final status update confirms
// what was delivered. run() fails when something accepted by an output was not delivered in time.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "checkpoint/watermark.h"
#include "listener/listener.h"
#include "listener/postgres/record_sequencer.h"
#include "listener/postgres/server_encoding.h"
#include "processor/processor.h"
#include "util/pg.h"
#include "util/stop_token.h"

namespace pgstream {

struct PostgresListenerSettings {
    std::string url;
    std::string slot_name;      // empty: pgstream_<dbname>_slot
    std::string plugin;         // empty: whatever the slot was created with
    size_t pack_bytes = 65536;  // pgstream plugin only: records packed per replication message
    std::chrono::milliseconds status_interval{1000};
    size_t handoff_bytes = 8u << 20;  // received, not yet processed replication messages
    std::chrono::milliseconds reconnect_initial{500};
    std::chrono::milliseconds reconnect_max{30000};
    // On shutdown, wait this long for outputs to deliver (for a listener built without a StopToken; the
    // pipeline's token carries PGSTREAM_SHUTDOWN_DRAIN_TIMEOUT).
    std::chrono::milliseconds drain_timeout{30000};
    // PGSTREAM_POSTGRES_LISTENER_ON_UNREADABLE_RECORD=dead-letter: where unreadable records go; null: stop.
    std::shared_ptr<UnreadableRecordFile> dead_letters;
};

struct PostgresListenerStats {
    std::atomic<uint64_t> messages{0};
    std::atomic<uint64_t> keepalives{0};
    std::atomic<uint64_t> status_updates{0};
    std::atomic<uint64_t> reconnects{0};
    // The server's end of WAL as it last reported it (replication messages and keepalives): with the
    // confirmed position, the replication lag in bytes.
    std::atomic<uint64_t> server_wal_end{0};
    // Bytes that were not characters of the database encoding (SQL_ASCII: bytes that are not UTF-8, read as
    // LATIN1; elsewhere: replaced with U+FFFD).
    std::atomic<uint64_t> unconvertible_bytes{0};
    // Gauge, measured at start: tables whose UPDATE/DELETE PostgreSQL cannot decode (no replica identity).
    std::atomic<uint64_t> tables_without_replica_identity{0};
};

class PostgresListener : public Listener {
  public:
    // Stops with a token of its own, whose drain timeout is settings.drain_timeout.
    PostgresListener(PostgresListenerSettings settings, Processor& next, Watermark& watermark);
    // stop() requests `stop`, and any stop of `stop` stops the listener.
    PostgresListener(PostgresListenerSettings settings, Processor& next, Watermark& watermark,
                     StopToken stop);
    ~PostgresListener() override;

    std::string run() override;
    void stop() override;

    const PostgresListenerStats& stats() const { return stats_; }
    // Records, events, unreadable and dead-lettered records: read on the processing thread or after run().
    const SequencerStats& record_stats() const { return sequencer_.stats(); }
    const std::string& slot_name() const { return slot_name_; }
    // "" while streaming, else what keeps the replication connection down (for /ready; no secrets).
    std::string connection_problem() const;

  private:
    struct Item {
        enum class Kind { Data, Keepalive, Reconnected } kind;
        std::string data;
        Lsn wal_start;
        Lsn wal_end;
    };

    // socket thread
    void socket_loop();
    bool open_stream(bool first);  // false: fatal (error_ set)
    bool pump();                   // reads until the connection breaks or stop; false on connection loss
    bool send_status(bool reply_requested);
    bool push_item(Item item, bool may_drop);
    void convert_to_utf8(std::string& out, std::string_view text);
    void warn_undecodable_tables(PGconn* conn);
    // True when the socket thread has nothing queued for the processing thread.
    bool source_drained();

    // processing thread
    void handle(Item& item);
    void fail(const std::string& message);
    void set_connection_problem(std::string problem);
    // A failed output or broken acknowledgements, "" while healthy.
    std::string pipeline_error() const;
    // The run's result once drained (or not) and checkpointed.
    std::string outcome(bool drained);

    PostgresListenerSettings settings_;
    Processor& next_;
    Watermark& watermark_;
    std::string slot_name_;
    std::string plugin_;
    PostgresListenerStats stats_;

    pg::ConnPtr conn_;
    std::unique_ptr<Utf8Converter> to_utf8_;  // null when the database is UTF-8
    std::chrono::steady_clock::time_point last_status_;
    Lsn last_received_;

    StopToken stop_;
    mutable std::mutex health_mutex_;
    std::string connection_problem_ = "connecting to PostgreSQL";
    std::mutex error_mutex_;
    std::string error_;

    std::mutex queue_mutex_;
    std::condition_variable queue_not_empty_;
    std::condition_variable queue_not_full_;
    std::deque<Item> queue_;
    size_t queued_bytes_ = 0;
    bool socket_done_ = false;  // the socket thread ended: nothing more will be queued

    RecordSequencer sequencer_;  // processing thread only

    // Extras of the pgstream plugin that older builds of it reject; each is dropped once the server refuses
    // it.
    std::vector<std::string> requested_extras_{"pgstream-transaction-fields-once",
                                               "pgstream-lossless-message-content"};
    std::thread socket_thread_;
};

// Resolves the slot name default: pgstream_<dbname>_slot.
std::string default_slot_name(const std::string& url);
// The rule shared with pgstream.default_slot_name_for() in SQL: "pgstream_<database>_slot", each byte that a
// slot name cannot hold (anything but a-z, 0-9, _; A-Z is lower-cased) replaced by '_'; past 63 bytes
// (PostgreSQL's limit, which would cut the name and let two databases share a slot) the first 49 bytes, '_',
// 8 hex digits of the FNV-1a hash of the whole database name, and "_slot".
std::string default_slot_name_for_database(const std::string& database);

}  // namespace pgstream
